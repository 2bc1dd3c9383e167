"""Issue 12: admission by bandwidth — the queue's side (the scripts), on a controlled clock.

The scripts' clock is moved with ``advance`` and the throughput made with progress reports, so
every figure below is exact; ``test_bandwidth.py`` does the same with real gunicorn and clients.
"""
from __future__ import annotations

import pytest

from app.queue.engine import QueueScriptError

from .queue_helpers import FAR, advance, new_engine

MB = 1_000_000


@pytest.fixture
def budget_engine(redis_client):
    made = []

    def make(**settings):
        engine = new_engine(redis_client, **settings)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.client.delete(*engine.keys.script_keys)


def join_all(engine, ids):
    return [engine.join(tid, 1, 10**9, FAR, "127.0.0.1") for tid in ids]


def report_seconds(engine, running: dict[str, int], seconds: int) -> None:
    """Each running download reports ``running[id]`` bytes every second for ``seconds`` seconds."""
    done = {tid: 0 for tid in running}
    for _ in range(seconds):
        advance(engine, 1)
        for tid, rate in running.items():
            engine.progress(tid, "c1", 0, done[tid] + rate, rate, range_end=10**9)
            done[tid] += rate


def active_ids(engine, ids):
    return [tid for tid, view in engine.status(ids).tokens.items() if view.state in ("admitted", "downloading")]


def test_without_a_budget_capacity_alone_decides(budget_engine):
    engine = budget_engine(capacity=3)
    snaps = join_all(engine, list("abcde"))
    assert [s.state for s in snaps] == ["admitted"] * 3 + ["waiting"] * 2
    assert snaps[-1].limit is None and snaps[-1].egress is None


def test_young_downloads_reserve_min_rate_then_measured_throughput_decides(budget_engine):
    engine = budget_engine(capacity=10, egress_budget=10 * MB, min_rate=2 * MB)
    ids = [f"t{n}" for n in range(9)]
    snaps = join_all(engine, ids)
    # nothing measured yet: each new download reserves MIN_RATE, so 5 fit in 10 MB/s
    assert [s.state for s in snaps] == ["admitted"] * 5 + ["waiting"] * 4
    assert snaps[-1].limit == 5
    running = ids[:5]
    for tid in running:
        engine.start(tid, "c1", 10**9)
    # slow clients: 1 MB/s each, measured over whole seconds once they are no longer young
    report_seconds(engine, {tid: MB for tid in running}, 5)
    snap = engine.summary()
    assert snap.egress == pytest.approx(5 * MB)
    # 5 MB/s measured leaves room for two more at 2 MB/s: admitted by the reports themselves
    assert snap.active == 7 and snap.limit == 7
    assert sorted(active_ids(engine, ids)) == ids[:7]  # in join order


def test_fast_downloads_stop_admissions_until_room_frees(budget_engine):
    engine = budget_engine(capacity=10, egress_budget=10 * MB, min_rate=2 * MB)
    join_all(engine, ["fast1", "fast2"])
    for tid in ("fast1", "fast2"):
        engine.start(tid, "c1", 10**9)
    report_seconds(engine, {"fast1": 5 * MB, "fast2": 4 * MB}, 6)
    snaps = join_all(engine, ["w1", "w2"])
    assert [s.state for s in snaps] == ["waiting", "waiting"]  # 9 MB/s + 2 MB/s exceeds the budget
    snap = engine.summary()
    assert snap.egress == pytest.approx(9 * MB) and snap.limit == 2 and snap.active == 2
    assert snap.eta_seconds(1) != 0  # the ETA knows no slot is free for the budget
    # one fast download slows to 1 MB/s: 6 MB/s leaves room for two at 2 MB/s
    report_seconds(engine, {"fast1": MB, "fast2": 5 * MB}, 4)
    assert engine.summary().active == 4


def test_a_host_that_stops_reporting_stops_counting(budget_engine):
    engine = budget_engine(capacity=10, egress_budget=10 * MB, min_rate=2 * MB)
    join_all(engine, ["gone"])
    engine.start("gone", "c1", 10**9)
    report_seconds(engine, {"gone": 10 * MB}, 5)
    assert join_all(engine, ["next"])[0].state == "waiting"  # the link is full
    advance(engine, 4)  # its host died: no more reports; its slot is still held
    snap = engine.reap()  # what every living process sends once a second
    assert snap.egress == 0 and snap.active == 2 and snap.admitted == ["next"]


def test_the_budget_is_a_live_setting_checked_like_the_others(budget_engine):
    engine = budget_engine(capacity=10)
    assert engine.configure(egress_budget=50 * MB, min_rate=5 * MB).settings.egress_budget == 50 * MB
    assert engine.summary().limit == 10
    assert engine.configure(egress_budget=0).limit is None  # 0: no budget
    with pytest.raises(QueueScriptError):  # the scripts refuse it before any write
        engine.configure(min_rate=0, capacity=3)
    assert engine.summary().settings.min_rate == 5 * MB and engine.summary().capacity == 10
