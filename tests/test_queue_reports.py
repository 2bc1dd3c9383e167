"""Issue 21: a process's download reports go together, one call per round, against real Redis."""
from __future__ import annotations

import json
import math
import threading
import time

import pytest
import redis

from app.errors import Unavailable
from app.queue.constants import PROGRESS_BATCH
from app.queue.housekeeping import Housekeeping
from app.queue.reporter import Reporter
from app.queue.reports import ProgressReport
from app.queue.retries import Retries

from .helpers.queue import FAR, advance, new_engine


def running(engine, count: int, size: int = 10_000) -> list[str]:
    """``count`` downloads started on one connection each (``t<n>`` on ``c<n>``)."""
    ids = [f"t{n}" for n in range(count)]
    for tid in ids:
        engine.join(tid, 1, size, FAR, "127.0.0.1")
        assert engine.start(tid, f"c{tid}", size).state == "ok"
    return ids


def info(engine, tid: str) -> dict:
    return json.loads(engine.client.hget(engine.keys.key("info"), tid))


def report(tid: str, end: int, delta: int, size: int = 10_000, **flags) -> ProgressReport:
    return ProgressReport(tid, f"c{tid}", 0, end, delta, size, **flags)


def counting(engine) -> dict[str, int]:
    calls: dict[str, int] = {}
    engine.on_call = lambda name, _seconds: calls.__setitem__(name, calls.get(name, 0) + 1)
    return calls


def test_a_round_carries_every_download_in_calls_of_at_most_a_batch(make_engine):
    count = PROGRESS_BATCH + 36
    engine = make_engine(capacity=count, stall_timeout=30)
    ids = running(engine, count)
    reporter = Reporter(engine, Retries())
    for n, tid in enumerate(ids):
        assert reporter.submit(report(tid, 100 + n, 100 + n))
    leases_before = dict(engine.client.zrange(engine.keys.key("active"), 0, -1, withscores=True))
    advance(engine, 10)
    calls = counting(engine)
    Housekeeping(engine, Retries(), reporter, on_reply=lambda snap: None, on_rebind=lambda: None).round()
    assert calls == {"progress": math.ceil(count / PROGRESS_BATCH)}  # no reap beside them
    assert len(reporter) == 0
    views = engine.status(ids).tokens
    assert [views[tid].bytes for tid in ids] == [100 + n for n in range(count)]
    leases = dict(engine.client.zrange(engine.keys.key("active"), 0, -1, withscores=True))
    assert all(leases[key] >= leases_before[key] + 10_000 for key in leases_before)  # every lease renewed
    assert {tid: info(engine, tid)["r"] for tid in ids} == {tid: [[0, 100 + n]] for n, tid in enumerate(ids)}


def test_reports_of_one_connection_fold_into_one(make_engine):
    engine = make_engine(capacity=1)
    (tid,) = running(engine, 1)
    reporter = Reporter(engine, Retries())
    calls = counting(engine)
    reporter.submit(report(tid, 300, 300))
    reporter.submit(report(tid, 1000, 700, handed=True))
    reporter.submit(report(tid, 1200, 200))
    assert len(reporter) == 1
    reporter.send()
    assert calls == {"progress": 1}
    record = info(engine, tid)
    assert (record["b"], record["r"], record["k"]) == (1200, [[0, 1200]], {f"c{tid}": 1})


def test_a_report_is_measured_when_it_was_true(make_engine):
    """A report waits up to a round for its call: the throughput sample is dated by its measure."""
    engine = make_engine(capacity=1)
    (tid,) = running(engine, 1)
    reporter = Reporter(engine, Retries())
    reporter.submit(ProgressReport(tid, f"c{tid}", 0, 500, 500, 10_000, measured=time.monotonic() - 2.0))
    snap = reporter.send()
    sampled_at = info(engine, tid)["hs"][-1][0]
    assert snap.now - 2600 <= sampled_at <= snap.now - 1900


class HeldEngine:
    """An engine whose first ``report`` call waits for ``go`` (a round on its way to Redis)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.on_the_way, self.go = threading.Event(), threading.Event()
        self.calls = 0

    def report(self, reports):
        self.calls += 1
        if self.calls == 1:
            self.on_the_way.set()
            assert self.go.wait(10)
        return self.engine.report(reports)


def test_a_closing_report_follows_the_round_on_its_way(make_engine):
    """The queue never hears of a connection after its end: a closing connection whose running
    report is in a call on its way waits for that call."""
    engine = make_engine(capacity=1)
    (tid,) = running(engine, 1)
    held = HeldEngine(engine)
    reporter = Reporter(held, Retries())
    reporter.submit(report(tid, 4000, 4000))
    round_ = threading.Thread(target=reporter.send)
    round_.start()
    assert held.on_the_way.wait(10)
    closing = threading.Thread(target=reporter.close, args=(report(tid, 5000, 1000, closing=True),))
    closing.start()
    closing.join(0.5)
    assert closing.is_alive()  # held behind the round
    held.go.set()
    round_.join(10)
    closing.join(10)
    view = engine.status([tid]).tokens[tid]
    assert (view.state, view.bytes) == ("paused", 5000)  # closed with 5,000 of 10,000: not open again
    assert "c" not in info(engine, tid) or f"c{tid}" not in info(engine, tid)["c"]


def test_reports_a_stopped_redis_missed_go_in_the_next_round(redis_server):
    server = redis_server(durable=True)
    client = redis.Redis(port=server.port, socket_timeout=2)
    engine = new_engine(client, capacity=1, stall_timeout=60)
    (tid,) = running(engine, 1)
    reporter = Reporter(engine, Retries())
    reporter.submit(report(tid, 1000, 1000))
    server.stop()
    with pytest.raises(Unavailable):
        reporter.send()
    assert len(reporter) == 1  # kept
    reporter.submit(report(tid, 1500, 500))
    server.start()
    reporter.send()
    assert engine.status([tid]).tokens[tid].bytes == 1500
    assert info(engine, tid)["r"] == [[0, 1500]]


def test_a_connection_whose_slot_was_taken_back_is_told_to_stop(make_engine):
    engine = make_engine(capacity=1)
    (a,) = running(engine, 1)
    engine.join("next", 1, 100, FAR, "127.0.0.1")
    reporter = Reporter(engine, Retries())
    assert reporter.submit(report(a, 100, 100))
    engine.remove(a)  # an operator takes it out; the next waiter is admitted
    reporter.send()
    assert reporter.submit(report(a, 200, 100)) is False
    reporter.close(report(a, 200, 0, closing=True))
    assert reporter.submit(report(a, 200, 0)) is True  # forgotten once closed


def test_a_first_report_sent_now_ends_the_min_rate_a_budget_counts(make_engine):
    """Under an egress budget a download counts as MIN_RATE until measured: its first report
    goes at once, not with the round."""
    engine = make_engine(capacity=4, egress_budget=100_000_000, min_rate=10_000_000)
    (tid,) = running(engine, 1)
    assert info(engine, tid)["cr"] == 10_000_000
    advance(engine, 1)
    reporter = Reporter(engine, Retries())
    assert reporter.send_now(report(tid, 5000, 5000))
    assert len(reporter) == 0
    assert 4000 <= info(engine, tid)["cr"] <= 5000  # what its client takes: 5,000 bytes in a second
