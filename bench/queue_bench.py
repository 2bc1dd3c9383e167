"""Queue benchmark: idle Redis cost per waiter and release-to-wake latency, ours vs the seed.

Runs both designs in one run against a private redis-server on a free loopback port:
  * push (ours): QueueEngine + one QueueHub per worker process, waiters woken by events;
  * seed: every waiter asks its position and the active count once a second (Flux.interval).
Waiters are spread over worker processes that monkey-patch with gevent, as gunicorn does.

    python bench/queue_bench.py [--waiters 10000] [--workers 4] [--idle 20] [--releases 100]
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from harness import RedisProcess, percentile

QUEUE = "bench"


READY_KEY, REPORTS_KEY = "bench:ready", "bench:reports"


def report(client, tid: str) -> None:
    """Tell the coordinator when a waiter woke (a Redis list: gevent-safe across processes)."""
    client.rpush(REPORTS_KEY, f"{tid} {time.time()!r}")


def run_waiters(client, ids: list[str], wait_for_turn, pause: float) -> None:
    """One greenlet per waiter; tell the coordinator once all have joined."""
    import gevent

    greenlets = []
    for tid in ids:
        greenlets.append(gevent.spawn(wait_for_turn, tid))
        gevent.sleep(pause)
    client.rpush(READY_KEY, len(ids))
    gevent.joinall(greenlets)


def push_worker(url: str, ids: list[str]) -> None:
    from gevent import monkey

    monkey.patch_all()

    from app.queue.connection import connect
    from app.queue.engine import QueueEngine
    from app.queue.settings import QueueSettings
    from app.queue.tracker import WaiterState
    from testbed.loops import ProcessHub

    client = connect(url)
    engine = QueueEngine(client, QUEUE, QueueSettings(capacity=1, wait_grace=600))
    hub = ProcessHub(engine)
    hub.start()

    def wait_for_turn(tid: str) -> None:
        waiter = hub.attach(tid, engine.join(tid, 1, 10, time.time() + 3600, "", streamed=True))
        while waiter.state != WaiterState.READY:
            waiter.wait(15)
        report(client, tid)

    run_waiters(client, ids, wait_for_turn, pause=0)


def seed_worker(url: str, ids: list[str]) -> None:
    """The seed's loop: every second, position + active count; ready when both are 0."""
    from gevent import monkey

    monkey.patch_all()
    import gevent

    from app.queue.connection import connect

    client = connect(url)
    queue_key, active_key = f"seed:{QUEUE}:queue", f"seed:{QUEUE}:downloading"

    def wait_for_turn(tid: str) -> None:
        if client.zscore(queue_key, tid) is None:  # the seed's check-then-enqueue
            client.zadd(queue_key, {tid: time.time()})
        while True:
            rank = client.zrank(queue_key, tid)
            active = client.scard(active_key)
            if (rank or 0) + active == 0:
                client.zrem(queue_key, tid)
                client.sadd(active_key, tid)
                report(client, tid)
                return
            gevent.sleep(1.0)

    run_waiters(client, ids, wait_for_turn, pause=0.0005)


def run(mode: str, url: str, args) -> dict[str, float]:
    import redis

    from app.queue.engine import QueueEngine
    from app.queue.settings import QueueSettings

    client = redis.Redis.from_url(url)
    client.flushall()
    engine = QueueEngine(client, QUEUE, QueueSettings(capacity=1, wait_grace=600))
    holder = "holder"
    if mode == "push":
        engine.join(holder, 1, 10, time.time() + 3600, "")
    else:
        client.sadd(f"seed:{QUEUE}:downloading", holder)
    ctx = multiprocessing.get_context("spawn")
    per = args.waiters // args.workers
    target = push_worker if mode == "push" else seed_worker
    procs = [ctx.Process(target=target, args=(url, [f"w{i}-{n:05d}" for n in range(per)]))
             for i in range(args.workers)]
    for proc in procs:
        proc.start()
    started, deadline = 0, time.time() + 300
    while started < len(procs):
        assert time.time() < deadline, "a worker did not start"
        started += client.blpop([READY_KEY], timeout=2) is not None
    time.sleep(2.0)

    client.config_resetstat()
    time.sleep(args.idle)
    stats = client.info("commandstats")
    calls = sum(v["calls"] for v in stats.values())
    per_waiter = calls / (per * args.workers) / args.idle
    usec_per_waiter = sum(v["usec"] for v in stats.values()) / (per * args.workers) / args.idle

    releases = args.releases if mode == "push" else max(10, args.releases // 5)
    latencies = []
    for _ in range(releases):
        released = time.time()
        if mode == "push":
            snap = engine.leave(holder)
            nxt = snap.admitted[0] if snap.admitted else None
        else:
            client.srem(f"seed:{QUEUE}:downloading", holder)
            nxt = None
        popped = client.blpop([REPORTS_KEY], timeout=4)
        assert popped is not None, "nobody woke"
        tid, woke_at = popped[1].decode().split()
        woke = float(woke_at)
        assert nxt is None or tid == nxt, (tid, nxt)
        latencies.append((woke - released) * 1000)
        holder = tid
        time.sleep(0.05)
    for proc in procs:
        proc.kill()
        proc.join()
    return {
        "waiters": per * args.workers,
        "idle_cmds_per_waiter_s": per_waiter,
        "idle_usec_per_waiter_s": usec_per_waiter,
        "wake_p50_ms": statistics.median(latencies),
        "wake_p99_ms": percentile(latencies, 0.99),
        "wake_max_ms": max(latencies),
        "releases": releases,
    }


def seed_peer(waiters: int, idle: float = 20.0) -> dict[str, float]:
    """The seed's polling loop on a private redis-server: the peer the other queue benchmarks
    print beside their figures."""
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            return run("seed", server.url, argparse.Namespace(waiters=waiters, workers=4, idle=idle, releases=50))
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--releases", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            url = server.url
            rows = {}
            for name, mode in (("push (ours)", "push"), ("seed poll (1 s)", "seed")):
                rows[name] = run(mode, url, args)
                print(name, rows[name], flush=True)
        finally:
            server.stop()
    print(f"\nQueue benchmark: {args.waiters} waiters over {args.workers} gevent processes, one redis-server")
    print(f"{'design':<18}{'Redis cmds/waiter/s':>22}{'wake p50 ms':>14}{'wake p99 ms':>14}{'max ms':>10}{'n':>6}")
    for name, row in rows.items():
        print(f"{name:<18}{row['idle_cmds_per_waiter_s']:>22.5f}{row['wake_p50_ms']:>14.2f}"
              f"{row['wake_p99_ms']:>14.2f}{row['wake_max_ms']:>10.2f}{row['releases']:>6}")
    ours, seed = rows["push (ours)"], rows["seed poll (1 s)"]
    print(f"\nidle Redis load: seed / ours = {seed['idle_cmds_per_waiter_s'] / max(ours['idle_cmds_per_waiter_s'], 1e-9):.0f}x;"
          f" wake p50: seed / ours = {seed['wake_p50_ms'] / max(ours['wake_p50_ms'], 1e-9):.0f}x")


if __name__ == "__main__":
    main()
