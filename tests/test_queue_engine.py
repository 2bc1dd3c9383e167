"""Issue 3: the queue engine's semantics, one script call at a time, against real Redis."""
from __future__ import annotations

import json
import time

import pytest
import redis

from app.queue.engine import QueueEngine

from .conftest import REDIS_URL
from .queue_helpers import FAR, advance, drop, journal, new_engine


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def make_engine(client):
    made: list[QueueEngine] = []

    def make(**settings) -> QueueEngine:
        engine = new_engine(client, **settings)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        drop(engine)


def join(engine, tid, size=100, expires=FAR):
    return engine.join(tid, 1, size, expires, "127.0.0.1")


def states(engine, *ids):
    return {tid: tuple(v[:2]) for tid, v in engine.status(list(ids)).tokens.items()}


def test_fifo_and_capacity(make_engine):
    engine = make_engine(capacity=2)
    snaps = [join(engine, f"t{i}") for i in range(5)]
    assert [s.state for s in snaps] == ["admitted", "admitted", "waiting", "waiting", "waiting"]
    assert [s.position for s in snaps[2:]] == [1, 2, 3]
    assert [s.seq for s in snaps] == [1, 2, 3, 4, 5]
    summary = engine.summary()
    assert (summary.active, summary.waiting, summary.capacity) == (2, 3, 2)


def test_join_is_idempotent_and_keeps_the_place(make_engine):
    engine = make_engine(capacity=1)
    for tid in ("a", "b", "c"):
        join(engine, tid)
    again = join(engine, "b")
    assert (again.state, again.position, again.seq) == ("waiting", 1, 2)
    assert join(engine, "a").state == "admitted"
    assert engine.summary().waiting == 2
    assert join(engine, "d").position == 3


def test_leave_frees_the_slot_and_admits_the_next_in_the_same_step(make_engine):
    engine = make_engine(capacity=1)
    for tid in ("a", "b", "c"):
        join(engine, tid)
    left = engine.leave("a")
    assert left.state == "admitted"
    assert left.admitted == ["b"]
    assert states(engine, "a", "b", "c") == {"a": ("none", 0), "b": ("admitted", 0), "c": ("waiting", 1)}
    assert engine.leave("zzz").state == "none"


def test_waiter_leaving_moves_everyone_behind_up(make_engine):
    engine = make_engine(capacity=1)
    for tid in "abcde":
        join(engine, tid)
    snap = engine.leave("c")
    assert snap.state == "waiting" and snap.removed == [3]
    assert states(engine, "b", "d", "e") == {"b": ("waiting", 1), "d": ("waiting", 2), "e": ("waiting", 3)}


def test_complete_download_spends_the_token(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a")
    join(engine, "b")
    assert engine.start("a", "c1").state == "ok"
    assert engine.progress("a", "c1", 0, 60, 60).state == "ok"
    done = engine.progress("a", "c1", 0, 100, 40)
    assert done.state == "complete" and done.admitted == ["b"]
    assert join(engine, "a").state == "spent"
    assert engine.start("a", "c2").state == "spent"
    finished = [e for e in journal(engine) if e["event"] == "finished"]
    assert finished == [{"t": "a", "event": "finished", "ts": finished[0]["ts"], "file": "1",
                         "outcome": "completed", "bytes": "100"}]


def test_ranges_from_several_connections_complete_together(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    for conn in ("c1", "c2", "c3"):
        assert engine.start("a", conn).state == "ok"
    assert engine.progress("a", "c2", 500, 1000, 500, closing=True).state == "ok"
    assert engine.progress("a", "c3", 0, 200, 200, closing=True).state == "ok"
    assert engine.progress("a", "c1", 200, 499, 299).state == "ok"
    assert engine.progress("a", "c1", 200, 500, 1).state == "complete"


def test_overlapping_resume_does_not_complete_early(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    engine.start("a", "c1")
    assert engine.progress("a", "c1", 0, 400, 400, closing=True).state == "paused"
    engine.start("a", "c2")
    assert engine.progress("a", "c2", 300, 999, 699).state == "ok"
    assert engine.progress("a", "c2", 300, 1000, 1, closing=True).state == "complete"


def test_connection_limit_per_token(make_engine):
    engine = make_engine(capacity=1, max_connections_per_token=2)
    join(engine, "a")
    assert engine.start("a", "c1").state == "ok"
    assert engine.start("a", "c2").state == "ok"
    assert engine.start("a", "c3").state == "too_many"
    engine.progress("a", "c1", 0, 10, 10, closing=True)
    assert engine.start("a", "c3").state == "ok"


def test_waiting_token_cannot_start(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a")
    join(engine, "b")
    snap = engine.start("b", "c1")
    assert (snap.state, snap.position) == ("waiting", 1)
    assert engine.start("nobody", "c1").state == "none"
    assert engine.progress("nobody", "c1", 0, 5, 5).state == "gone"


def test_expired_token_refused_and_skipped_at_admission(make_engine):
    engine = make_engine(capacity=1)
    assert join(engine, "old", expires=time.time() - 1).state == "expired"
    join(engine, "a")
    join(engine, "short", expires=time.time() + 2)
    join(engine, "c")
    advance(engine, 5)
    snap = engine.leave("a")
    assert snap.admitted == ["c"]
    assert states(engine, "short")["short"] == ("none", 0)


def test_max_queue_length(make_engine):
    engine = make_engine(capacity=1, max_queue_length=2)
    for tid in "abc":
        assert join(engine, tid).state in ("admitted", "waiting")
    full = join(engine, "d")
    assert full.state == "full" and full.waiting == 2
    assert join(engine, "b").state == "waiting"  # re-attaching is never refused


def test_no_show_frees_the_slot(make_engine):
    engine = make_engine(capacity=1, admit_timeout=10)
    join(engine, "a")
    join(engine, "b")
    advance(engine, 9)
    assert engine.reap().admitted == []
    advance(engine, 2)
    assert engine.reap().admitted == ["b"]
    outcomes = [e["outcome"] for e in journal(engine) if e["event"] == "finished"]
    assert outcomes == ["no_show"]


def test_stall_frees_the_slot_and_progress_renews_it(make_engine):
    engine = make_engine(capacity=1, stall_timeout=5)
    join(engine, "a", size=1000)
    join(engine, "b")
    engine.start("a", "c1")
    for sent in (100, 200, 300):
        advance(engine, 4)
        assert engine.progress("a", "c1", 0, sent, 100).state == "ok"
    advance(engine, 6)
    assert engine.reap().admitted == ["b"]
    assert engine.progress("a", "c1", 0, 400, 100).state == "gone"
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["stalled"]


def test_resume_inside_and_outside_the_grace(make_engine):
    engine = make_engine(capacity=1, resume_grace=30, stall_timeout=5, wait_grace=1000)
    join(engine, "a", size=1000)
    join(engine, "b")
    engine.start("a", "c1")
    assert engine.progress("a", "c1", 0, 300, 300, closing=True).state == "paused"
    advance(engine, 20)
    assert engine.reap().admitted == []
    assert engine.start("a", "c2").state == "ok"
    assert engine.progress("a", "c2", 300, 600, 300, closing=True).state == "paused"
    advance(engine, 31)
    assert engine.reap().admitted == ["b"]
    assert engine.start("a", "c3").state == "none"
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["abandoned"]


def test_waiter_keeps_its_place_for_the_wait_grace(make_engine):
    engine = make_engine(capacity=1, wait_grace=10)
    for tid in "abcd":
        join(engine, tid)
    engine.touch(["b", "c", "d"], grace=30)
    engine.touch(["c"], grace=10)  # c's stream dropped
    advance(engine, 8)
    assert join(engine, "c").position == 2  # reconnected in time: same place
    engine.touch(["b", "c", "d"], grace=30)  # all connected
    advance(engine, 15)
    assert states(engine, "c")["c"] == ("waiting", 2)
    engine.touch(["b", "d"], grace=30)
    engine.touch(["c"], grace=10)  # c drops again and does not come back
    advance(engine, 11)
    snap = engine.reap()
    assert snap.removed == [3]
    assert states(engine, "b", "c", "d") == {"b": ("waiting", 1), "c": ("none", 0), "d": ("waiting", 2)}


def test_every_state_change_publishes_one_event(make_engine, client):
    engine = make_engine(capacity=1)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(engine.keys.channel)
    pubsub.get_message(timeout=1)
    join(engine, "a")
    join(engine, "b")
    join(engine, "b")  # no change: no event
    engine.leave("a")
    events = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        events.append(json.loads(message["data"]))
    pubsub.close()
    assert [e["version"] for e in events] == [1, 2, 3]
    assert events[0]["admitted"] == ["a"] and events[0]["removed"] == [1]
    assert events[2]["admitted"] == ["b"] and events[2]["removed"] == [2]


def test_script_cache_flush_is_survived(make_engine, client):
    engine = make_engine(capacity=1)
    join(engine, "a")
    client.script_flush()
    assert join(engine, "b").position == 1
    client.script_flush()
    assert engine.leave("a").admitted == ["b"]


def test_all_keys_share_one_hash_tag(make_engine):
    from redis.cluster import key_slot

    engine = make_engine()
    keys = [*engine.keys.script_keys, engine.keys.channel]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(k.startswith("{dq:") for k in keys)


def test_eta_from_admission_rate(make_engine):
    engine = make_engine(capacity=1, wait_grace=1000)
    for tid in "abcdef":
        join(engine, tid)
    for tid in "abc":
        advance(engine, 10)
        engine.leave(tid)
    snap = engine.summary()
    assert snap.rate == pytest.approx(0.1, rel=0.05)
    assert snap.eta_seconds(3) == pytest.approx(30, abs=2)


def test_eta_from_bytes_before_any_rate_is_known(make_engine):
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=1000)
    join(engine, "b")
    join(engine, "c")
    engine.start("a", "c1")
    advance(engine, 10)
    engine.progress("a", "c1", 0, 250, 250)  # 25 bytes/s, 750 left: about 30 s
    snap = engine.summary()
    assert snap.rate == 0
    assert snap.eta_seconds(1) == pytest.approx(30, abs=1)
    assert snap.eta_seconds(2) == pytest.approx(60, abs=2)
