"""Issue 3: killed processes, a flushed script cache and a restarted Redis lose no slot."""
from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid

import pytest
import redis

from app.errors import Unavailable
from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.queue.tracker import WaiterState
from testbed.loops import ProcessHub
from testbed.servers import RedisProcess, wait_until

from .helpers.clients import hold_slots
from .helpers.env import REDIS_URL
from .helpers.queue import drop, journal, replay_max_active

READY = WaiterState.READY


def test_killed_process_slots_come_back_within_the_lease(tmp_path):
    name = f"kill{uuid.uuid4().hex[:8]}"
    settings = dict(capacity=3, stall_timeout=2.0, admit_timeout=2.0, wait_grace=60)
    client = redis.Redis.from_url(REDIS_URL)
    engine = QueueEngine(client, name, QueueSettings(**settings))
    hub = ProcessHub(engine)  # production cadence: reaper every second
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=hold_slots, args=(REDIS_URL, name, settings, ["h1", "h2", "h3"], ready))
    holder.start()
    try:
        assert ready.wait(30)
        hub.start()
        waiters = [hub.attach(tid, engine.join(tid, 1, 100, time.time() + 600, "")) for tid in ("w1", "w2", "w3", "w4")]
        time.sleep(0.5)
        assert engine.summary().active == 3 and all(w.position for w in waiters)
        holder.kill()
        killed_at = time.monotonic()
        holder.join(5)
        woke = []
        for waiter in waiters[:3]:
            while waiter.state != READY and time.monotonic() - killed_at < 10:
                waiter.wait(0.05)
            woke.append(time.monotonic() - killed_at)
        assert all(w.state == READY for w in waiters[:3])
        assert max(woke) <= settings["stall_timeout"] + 1.0 + 0.3, woke
        assert waiters[3].state != READY
        events = journal(engine)
        outcomes = sorted((e["t"], e["outcome"]) for e in events if e["event"] == "finished")
        assert outcomes == [("h1", "stalled"), ("h2", "stalled"), ("h3", "stalled")]
        assert replay_max_active(events) == 3
    finally:
        hub.close()
        if holder.is_alive():
            holder.kill()
        drop(engine)


def _cycle(engine: QueueEngine, tids: list[str], errors: list[BaseException]) -> None:
    """Join, wait for the turn by polling status, download in full."""
    try:
        for tid in tids:
            engine.join(tid, 1, 10, time.time() + 600, "")
            deadline = time.time() + 60
            while engine.status([tid]).tokens[tid].state == "waiting":
                assert time.time() < deadline
                time.sleep(0.01)
            assert engine.start(tid, "c").state == "ok"
            assert engine.progress(tid, "c", 0, 10, 10).state == "complete"
    except BaseException as exc:
        errors.append(exc)


def test_script_cache_flushed_mid_run():
    client = redis.Redis.from_url(REDIS_URL)
    engine = QueueEngine(client, f"flush{uuid.uuid4().hex[:8]}", QueueSettings(capacity=2, wait_grace=60))
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_cycle, args=(engine, [f"t{i}-{n}" for n in range(15)], errors))
               for i in range(6)]
    try:
        for thread in threads:
            thread.start()
        flushes = 0
        while any(t.is_alive() for t in threads):
            client.script_flush()
            flushes += 1
            time.sleep(0.02)
        assert not errors, errors
        assert flushes > 5
        events = journal(engine)
        assert sum(e["event"] == "admitted" for e in events) == 90
        assert replay_max_active(events) == 2
        assert engine.summary().active == 0
    finally:
        drop(engine)


def test_redis_restart_is_survived(tmp_path):
    server = RedisProcess(tmp_path / "redis", durable=True).start()
    client = redis.Redis(port=server.port)
    engine = QueueEngine(client, "restart", QueueSettings(capacity=2, wait_grace=60, stall_timeout=30))
    hub = ProcessHub(engine, coalesce=0.05)
    hub.start()
    try:
        snaps = {tid: engine.join(tid, 1, 10, time.time() + 600, "") for tid in ("a", "b", "c", "d")}
        waiters = {tid: hub.attach(tid, snap) for tid, snap in snaps.items()}
        assert [waiters[t].state for t in "abcd"] == [READY, READY, "waiting", "waiting"]
        engine.start("a", "c1")

        server.stop()
        with pytest.raises(Unavailable):
            engine.summary()
        server.start()

        wait_until(lambda: _answers(engine), timeout=10, message="engine back")
        state = engine.status(["a", "b", "c", "d"]).tokens
        assert {t: v.state for t, v in state.items()} == {"a": "downloading", "b": "admitted",
                                                       "c": "waiting", "d": "waiting"}
        wait_until(lambda: hub._subscribed.is_set() and _listening(client, engine), message="hub resubscribed")
        assert engine.progress("a", "c1", 0, 10, 10).state == "complete"
        wait_until(lambda: waiters["c"].state == READY, message="c admitted after the restart")
        assert waiters["d"].state == "waiting"
        engine.leave("b")
        wait_until(lambda: waiters["d"].state == READY, message="d admitted")
        events = journal(engine)
        assert replay_max_active(events) == 2
        assert [e["t"] for e in events if e["event"] == "admitted"] == ["a", "b", "c", "d"]
    finally:
        hub.close()
        server.stop()


def _answers(engine: QueueEngine) -> bool:
    try:
        engine.summary()
        return True
    except Exception:
        return False


def _listening(client: redis.Redis, engine: QueueEngine) -> bool:
    try:
        return client.pubsub_numsub(engine.keys.channel)[0][1] >= 1
    except redis.RedisError:
        return False


def test_random_kills_never_exceed_capacity():
    """Holders killed at random moments while others wait: capacity holds, all slots return."""
    name = f"rk{uuid.uuid4().hex[:8]}"
    settings = dict(capacity=2, stall_timeout=1.0, admit_timeout=1.0, wait_grace=60)
    client = redis.Redis.from_url(REDIS_URL)
    engine = QueueEngine(client, name, QueueSettings(**settings))
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    try:
        for round_ in range(3):
            ready = ctx.Event()
            tokens = [f"r{round_}-{i}" for i in range(2)]
            proc = ctx.Process(target=hold_slots, args=(REDIS_URL, name, settings, tokens, ready))
            proc.start()
            assert ready.wait(30)
            time.sleep(rng.uniform(0.1, 0.5))
            proc.kill()
            proc.join(5)
            wait_until(lambda: engine.reap().active == 0, timeout=5, message="slots reclaimed")
        events = journal(engine)
        assert replay_max_active(events) == 2
        assert sum(e["event"] == "finished" for e in events) == 6
    finally:
        drop(engine)
