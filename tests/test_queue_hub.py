"""Issue 3: one subscription per process pushes admissions and positions to local waiters."""
from __future__ import annotations

import json
import time

import pytest
import redis

from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.queue.tracker import WaiterState
from testbed.loops import ProcessHub
from testbed.servers import wait_until

READY, WAITING, GONE = WaiterState.READY, WaiterState.WAITING, WaiterState.GONE


@pytest.fixture
def private_redis(redis_server):
    return redis.Redis(port=redis_server().port)


@pytest.fixture
def make(private_redis):
    """``make(capacity=1)`` -> (engine, started hub); hubs are closed after the test."""
    hubs = []

    def build(**settings):
        engine = QueueEngine(private_redis, "hub", QueueSettings(**{"wait_grace": 60, **settings}))
        hub = ProcessHub(engine, coalesce=0.1, reap_interval=0.2)
        hub.start()
        hubs.append(hub)
        return engine, hub

    yield build
    for hub in hubs:
        hub.close()


def join_all(engine, hub, ids):
    return {tid: hub.attach(tid, engine.join(tid, 1, 10, time.time() + 600, "")) for tid in ids}


def test_positions_follow_events_without_asking_redis(make, private_redis):
    engine, hub = make(capacity=1)
    ids = [f"t{i:03d}" for i in range(100)]
    waiters = join_all(engine, hub, ids)
    private_redis.config_resetstat()
    for tid in ids[2:40:3]:  # 13 waiters leave, from "another process"
        engine.leave(tid)
    engine.leave(ids[0])  # the slot frees: t001 admitted
    wait_until(lambda: waiters[ids[1]].state == READY, message="t001 admitted")
    time.sleep(0.4)
    truth = engine.status(ids).tokens
    for tid, waiter in waiters.items():
        if truth[tid].state == "waiting":
            assert (waiter.state, waiter.position) == (WAITING, truth[tid].position), tid
    stats = private_redis.info("commandstats")
    assert "cmdstat_zrank" not in stats or stats["cmdstat_zrank"]["calls"] <= 100  # only the final check
    left_waiter = waiters[ids[5]]
    assert left_waiter.state == GONE


def test_a_gap_in_versions_triggers_a_resync(make, private_redis):
    engine, hub = make(capacity=1)
    waiters = join_all(engine, hub, ["a", "b", "c", "d"])
    # remove b behind the hub's back (no event), then announce a later version
    private_redis.zrem(engine.keys.waiting, "b")
    private_redis.hincrby(engine.keys.counters, "version", 5)
    private_redis.publish(engine.keys.channel, json.dumps({
        "version": hub.tracker.version + 6, "epoch": hub.tracker.epoch, "now": 0, "waiting": 2,
        "active": 1, "capacity": 1, "rate": 0}))
    wait_until(lambda: waiters["c"].position == 1 and waiters["d"].position == 2, message="resync")


def test_admission_wakes_the_waiter_at_once(make):
    engine, hub = make(capacity=1)
    waiters = join_all(engine, hub, ["a", "b"])
    latencies = []
    for i in range(20):
        nxt = f"n{i}"
        waiters[nxt] = hub.attach(nxt, engine.join(nxt, 1, 10, time.time() + 600, ""))
        holder = next(t for t, w in waiters.items() if w.state == READY and t not in ("done",))
        current = next(t for t, w in waiters.items() if w.state == WAITING)
        released = time.perf_counter()
        engine.leave(holder)
        waiters[current].wait(10)  # generous for a loaded machine; the median below is the claim
        latencies.append(time.perf_counter() - released)
        assert waiters[current].state == READY
        waiters.pop(holder)
    assert sorted(latencies)[len(latencies) // 2] < 0.5  # woken by the event, not by a poll


def test_closing_the_hub_ends_every_stream(make):
    engine, hub = make(capacity=1)
    waiters = join_all(engine, hub, ["a", "b", "c"])
    hub.close()
    assert all(w.state == "closed" for w in waiters.values())


def test_waiter_attached_after_its_admission_event_is_ready(make):
    engine, hub = make(capacity=1)
    engine.join("a", 1, 10, time.time() + 600, "")
    late = engine.join("b", 1, 10, time.time() + 600, "")
    gone = engine.join("c", 1, 10, time.time() + 600, "")
    engine.leave("a")  # admits b
    engine.leave("c")  # c leaves on its own
    wait_until(lambda: hub.tracker.version >= gone.version + 2, message="hub saw both events")
    assert hub.attach("b", late).state == READY
    assert hub.attach("c", gone).state == GONE


def just_told_line(make, monkeypatch, far_interval: float):
    """t00 holds the slot, t01-t11 wait, each told its place a moment ago; the first 5 places are
    the near front."""
    from app.queue import hub as hub_module

    monkeypatch.setattr(hub_module, "NEAR_FRONT", 5)
    monkeypatch.setattr(hub_module, "FAR_INTERVAL", far_interval)
    engine, hub = make(capacity=1)
    ids = [f"t{i:02d}" for i in range(12)]
    waiters = join_all(engine, hub, ids)
    for waiter in waiters.values():
        waiter.woken_at = time.monotonic()
        waiter.changed.clear()
    return engine, ids, waiters


def test_far_back_waiters_hear_less_often(make, monkeypatch):
    engine, ids, waiters = just_told_line(make, monkeypatch, far_interval=1.5)
    engine.leave(ids[3])  # everyone behind t03 moves up by one
    near, far = waiters[ids[4]], waiters[ids[10]]
    wait_until(lambda: near.changed.is_set(), timeout=2, message="near waiter woken")
    assert near.position == 3
    assert far.position == 9 and not far.changed.is_set()  # moved, but not told yet
    wait_until(lambda: far.changed.is_set(), timeout=3, message="far waiter told later")


def test_a_deferred_waiter_catches_up_only_when_it_may_reach_the_front(make, monkeypatch):
    """A waiter whose news is held back is not caught up at every flush (that would cost the
    whole line each second), but it is as soon as the removals since may bring it to the front."""
    engine, ids, waiters = just_told_line(make, monkeypatch, far_interval=60)
    coming, back = waiters[ids[7]], waiters[ids[11]]
    engine.leave(ids[1])
    wait_until(lambda: coming.position == 6 and back.position == 10, message="caught up once")
    assert not coming.changed.is_set() and not back.changed.is_set()  # both held back
    engine.leave(ids[2])
    wait_until(lambda: coming.changed.is_set(), timeout=2, message="woken on reaching the front")
    assert coming.position == 5
    time.sleep(0.3)  # flushes pass
    assert back.position == 10 and back.version < coming.version  # exact at its version; told later


def test_far_back_news_is_spread_over_the_flush_interval(make, monkeypatch):
    """Far-back waiters are told a few at a time across the interval, not in one burst that
    every process sharing the cores would feel (an admission meanwhile waits for a few writes)."""
    from app.queue import hub as hub_module

    monkeypatch.setattr(hub_module, "NEAR_FRONT", 2)
    monkeypatch.setattr(hub_module, "FAR_BATCH", 2)
    engine, hub = make(capacity=1)
    ids = [f"t{i:02d}" for i in range(22)]
    waiters = join_all(engine, hub, ids)
    far = [waiters[i] for i in ids[5:]]  # 17 places behind the front after the leave: 9 batches
    for waiter in waiters.values():
        waiter.woken_at = 0.0  # each is due
        waiter.changed.clear()
    engine.leave(ids[1])
    wait_until(lambda: all(w.changed.is_set() for w in far), timeout=5, message="every far waiter told")
    times = sorted(w.woken_at for w in far)
    # 9 batches, each after the one before by FAR_SPREAD / 9 of the 0.1 s interval: 8 pauses
    assert times[-1] - times[0] >= 0.1 * hub_module.FAR_SPREAD * 8 / 9 * 0.99
    assert len({round(t, 6) for t in times}) >= 9  # in batches, not at once


def test_detaching_twice_is_harmless(make):
    engine, hub = make(capacity=1)
    waiters = join_all(engine, hub, ["a", "b"])
    hub.detach(waiters["b"])
    hub.detach(waiters["b"])
    assert "b" not in hub.waiters
    assert engine.status(["b"]).tokens["b"].state == "waiting"  # its place is kept for the grace


def test_a_move_the_hub_held_back_goes_as_the_heartbeat_not_beside_it(make, monkeypatch):
    """A waiter far back hears its moves at most every FAR_INTERVAL; when its heartbeat falls due
    with a move untold, the move is the sign of life: one write, not a heartbeat then the move."""
    from contextlib import nullcontext

    from app.services import waiting
    from app.services.feeds import Pause
    from app.services.tokens import TokenClaims

    monkeypatch.setattr(waiting, "HEARTBEAT_SECONDS", 1.0)

    class Streams:
        def inc(self) -> None: ...
        def dec(self) -> None: ...

    engine, hub = make(capacity=1)
    ids = [f"t{i:03d}" for i in range(112)]  # one holds the slot; the last waits at 111
    for tid in ids[:-1]:
        engine.join(tid, 1, 10, time.time() + 600, "")
    claims = TokenClaims(ids[-1], 1, int(time.time()) + 600)
    feed = waiting.events(engine, hub, claims, engine.join(ids[-1], 1, 10, time.time() + 600, ""), "",
                          nullcontext, Streams())
    assert next(feed).data["position"] == 111
    engine.leave(ids[1])  # its first move is told at once (nothing told for FAR_INTERVAL)
    pause = next(feed)
    assert isinstance(pause, Pause) and pause.wait()
    assert next(feed).data["position"] == 110
    engine.leave(ids[2])  # the next is held back: it was told a moment ago
    pause = next(feed)
    assert not pause.wait() and pause.seconds <= 1.0  # woken by nothing: its heartbeat is due
    told = next(feed)
    assert (told.kind, told.data["position"]) == ("position", 109)
    pause = next(feed)
    assert isinstance(pause, Pause) and not pause.wait()  # nothing else with it
    assert next(feed).kind == "heartbeat"  # a still line: the heartbeat itself
    feed.close()
