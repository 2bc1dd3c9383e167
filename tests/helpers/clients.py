"""Client behaviours run in separate OS processes by the concurrency and recovery tests."""
from __future__ import annotations

import random
import threading
import time

import redis

from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.queue.tracker import WaiterState
from testbed.loops import ProcessHub

SIZE = 1000


def run_clients(url: str, name: str, settings: dict, plan: list[tuple[str, str]], start_at: float,
                results) -> None:
    """Join with every (token, behaviour) of ``plan`` at once, then behave; report outcomes."""
    client = redis.Redis.from_url(url)
    engine = QueueEngine(client, name, QueueSettings(**settings))
    hub = ProcessHub(engine, coalesce=0.05, reap_interval=0.2)
    hub.start()
    time.sleep(max(0.0, start_at - time.time()))
    threads = [threading.Thread(target=behave, args=(engine, hub, tid, kind, results)) for tid, kind in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    hub.close()


def behave(engine: QueueEngine, hub: ProcessHub, tid: str, kind: str, results) -> None:
    rng = random.Random(tid)
    snap = engine.join(tid, 1, SIZE, time.time() + 600, "")
    waiter = hub.attach(tid, snap)
    if kind == "leaver":
        waiter.wait(rng.uniform(0.0, 0.3))
        if waiter.state == WaiterState.WAITING:
            engine.leave(tid)
            hub.detach(waiter)
            results.put((tid, kind, snap.seq, "left"))
            return
    deadline = time.time() + 90
    while waiter.state == WaiterState.WAITING and time.time() < deadline:
        waiter.wait(1.0)
    hub.detach(waiter)
    if waiter.state != WaiterState.READY:
        results.put((tid, kind, snap.seq, f"never admitted ({waiter.state})"))
        return
    if kind == "no_show":
        results.put((tid, kind, snap.seq, "admitted"))
        return
    conn = "c" + tid
    if engine.start(tid, conn).state != "ok":
        results.put((tid, kind, snap.seq, "start refused"))
        return
    time.sleep(rng.uniform(0.0, 0.015))
    if kind == "staller":
        engine.progress(tid, conn, 0, SIZE // 2, SIZE // 2)
        results.put((tid, kind, snap.seq, "stalled"))
        return
    final = engine.progress(tid, conn, 0, SIZE, SIZE)
    results.put((tid, kind, snap.seq, final.state))


def hold_slots(url: str, name: str, settings: dict, tokens: list[str], ready) -> None:
    """Join and start downloading ``tokens``, keep sending progress, until killed."""
    client = redis.Redis.from_url(url)
    engine = QueueEngine(client, name, QueueSettings(**settings))
    for tid in tokens:
        engine.join(tid, 1, 10**9, time.time() + 600, "")
        assert engine.start(tid, "c" + tid).state == "ok"
    ready.set()
    sent = 0
    while True:
        sent += 1000
        for tid in tokens:
            engine.progress(tid, "c" + tid, 0, sent, 1000)
        time.sleep(0.1)
