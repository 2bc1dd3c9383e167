"""A scheduled release of a large pre-queue, beside the same number of ordinary joins.

On a private redis-server with the queue's defaults, --waiters ordinary joins (one file, no
release) are timed first; then the line is emptied and as many waiters join a file whose release
is a few seconds ahead, so they wait in its pre-queue. Two processes' housekeeping loops (what two
gunicorn workers run, ``app/queue/housekeeping.py``) notice the release at their next reap and
place the pre-queue a bounded batch a call. Every waiter joins as a stream of the first process,
whose reaps keep it present, as a connected page is.

Printed: the time from the release to the last waiter placed, the number of release calls and the
longest single script call (``SLOWLOG``), and Redis CPU (``INFO cpu``) and script time
(``INFO commandstats``) of each phase, with the release's cost as a ratio of the joins'. Then what
was lost: pre-queued waiters without a place, places given twice, the line's length, and
Spearman's rank correlation between arrival and place (near 0: the order owes nothing to arrival).

    python bench/release_bench.py [--waiters 100000]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import redis
from harness import RedisProcess

from app.queue.constants import MAX_STATUS_IDS, RELEASE_BATCH
from app.queue.engine import QueueEngine
from app.queue.housekeeping import Housekeeping
from app.queue.reporter import Reporter
from app.queue.retries import Retries
from app.queue.settings import QueueSettings
from app.queue.states import HAS_SLOT, TokenState

FAR = 4102444800  # token expiry: 2100-01-01
LEAD = 3.0  # seconds from the last pre-queued join to the release
SLOW_USEC = 100  # SLOWLOG threshold: every call at least this long is kept


class Usage:
    """Redis CPU seconds, script µs and script calls since it was made."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        client.config_resetstat()
        client.slowlog_reset()
        self.cpu = self._cpu()
        self.wall = time.perf_counter()

    def _cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def read(self) -> dict[str, float]:
        stats = self.client.info("commandstats")
        scripts = [v for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")]
        slow = [e["duration"] for e in self.client.slowlog_get(100_000) if e["command"].startswith(b"EVALSHA")]
        return {"wall": time.perf_counter() - self.wall, "cpu": self._cpu() - self.cpu,
                "calls": sum(v["calls"] for v in scripts), "usec": sum(v["usec"] for v in scripts),
                "longest_usec": max(slow, default=0)}


def join_all(engine: QueueEngine, file_id: int, prefix: str, count: int, release_at: float = 0) -> None:
    for n in range(count):
        # a distinct address each: the cap on places per client is counted, as in production
        holder = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        engine.join(f"{prefix}{n}", file_id, 1 << 30, FAR, streamed=True, holder=holder, release_at=release_at)


def places(engine: QueueEngine, ids: list[str]) -> tuple[list[int | None], int]:
    """Each waiter's place in line (None: admitted or not in line) and how many were admitted
    (the first ones drawn, into the free slots)."""
    found: list[int | None] = []
    admitted = 0
    for start in range(0, len(ids), MAX_STATUS_IDS):
        chunk = ids[start:start + MAX_STATUS_IDS]
        tokens = engine.status(chunk).tokens
        for token_id in chunk:
            view = tokens[token_id]
            admitted += view.state in HAS_SLOT
            found.append(view.position if view.state == TokenState.WAITING else None)
    return found, admitted


def spearman(places_in_arrival_order: list[int]) -> float:
    """Rank correlation of arrival (0, 1, ...) and place, both without ties."""
    n = len(places_in_arrival_order)
    order = sorted(range(n), key=places_in_arrival_order.__getitem__)
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    d2 = sum((i - rank[i]) ** 2 for i in range(n))
    return 1 - 6 * d2 / (n * (n * n - 1))


def row(name: str, usage: dict[str, float], count: int) -> str:
    return (f"{name:<34}{usage['wall']:>9.2f} s{usage['cpu']:>9.2f} s{usage['usec'] / 1e6:>10.2f} s"
            f"{usage['calls']:>9}{usage['usec'] / max(1, usage['calls']):>9.1f}{usage['longest_usec']:>10}"
            f"{usage['cpu'] * 1e6 / count:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiters", type=int, default=100_000)
    args = parser.parse_args()
    count = args.waiters
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp) / "redis").start()
        try:
            client = redis.Redis.from_url(server.url)
            client.config_set("slowlog-log-slower-than", SLOW_USEC)
            client.config_set("slowlog-max-len", 100_000)
            engines = [QueueEngine(redis.Redis.from_url(server.url), "release-bench", QueueSettings())
                       for _ in range(2)]
            loops = [Housekeeping(e, Retries(), Reporter(e, Retries()), on_reply=lambda snap: None, on_rebind=lambda: None) for e in engines]
            for loop in loops:
                loop.start()
            try:
                run(client, engines[0], count)
            finally:
                for loop in loops:
                    loop.close()
        finally:
            server.stop()


def run(client: redis.Redis, engine: QueueEngine, count: int) -> None:
    usage = Usage(client)
    join_all(engine, 2, "o", count)
    joins = usage.read()
    ordinary = engine.summary()
    ordinary_line = ordinary.waiting + ordinary.active
    for key in client.scan_iter(match="*release-bench*"):
        client.delete(key)

    usage = Usage(client)
    release_at = engine.summary().now / 1000 + 3600  # moved to LEAD seconds ahead once all have joined
    ids = [f"p{n}" for n in range(count)]
    join_all(engine, 1, "p", count, release_at=release_at)
    prejoins = usage.read()
    prequeued = engine.summary().prequeued

    release_at = engine.summary().now / 1000 + LEAD
    engine.reschedule(1, release_at)
    while engine.summary().now / 1000 < release_at - 0.2:
        time.sleep(0.05)
    usage = Usage(client)
    wait_start = time.perf_counter()
    while engine.summary().releases and time.perf_counter() - wait_start < 600:
        time.sleep(0.01)
    done = time.time()
    release = usage.read()
    snap = engine.summary()
    placed_after = done - release_at

    found, admitted = places(engine, ids)
    given = [p for p in found if p is not None]  # in arrival order
    missing = count - admitted - len(given)
    twice = len(given) - len(set(given))
    off = len(set(given) - set(range(1, len(given) + 1)))  # a place beyond the line's length
    rho = spearman(given) if given else float("nan")

    print(f"\nRelease of {count} pre-queued waiters on one Redis (queue defaults; two processes' "
          f"housekeeping, batches of {RELEASE_BATCH})")
    print(f"{'':<34}{'wall':>11}{'Redis CPU':>11}{'scripts':>12}{'calls':>9}{'µs/call':>9}"
          f"{'longest µs':>10}{'CPU µs/w':>10}")
    print(row(f"{count} ordinary joins", joins, count))
    print(row(f"{count} joins into a pre-queue", prejoins, count))
    print(row("the release (from its time)", release, count))
    print(f"\ntime from release_at to every waiter placed: {placed_after:.2f} s "
          f"(the release is noticed at a process's next reap, about once a second)")
    print(f"release cost / ordinary joins' cost: Redis CPU {release['cpu'] / joins['cpu']:.3f}x, "
          f"script time {release['usec'] / joins['usec']:.3f}x; "
          f"joining the pre-queue / joining the line: {prejoins['cpu'] / joins['cpu']:.2f}x CPU")
    print(f"longest single script call of the run: {max(joins['longest_usec'], prejoins['longest_usec'], release['longest_usec'])} µs "
          f"(SLOWLOG keeps calls of {SLOW_USEC} µs and more)")
    print(f"\nlost: {missing} pre-queued waiters without a place, {twice} places given twice, {off} off the "
          f"line; {admitted} admitted into the free slots at once, {len(given)} waiting; "
          f"pre-queued before: {prequeued}, after: {snap.prequeued}; line: {snap.waiting + snap.active} "
          f"(expected {count}); after the ordinary joins: {ordinary_line} (expected {count})")
    print(f"Spearman's rho between arrival and place (the waiting ones): {rho:+.4f} "
          f"(|rho| < {3 / math.sqrt(max(1, len(given) - 1)):.4f} "
          f"is within three standard errors of 0)")


if __name__ == "__main__":
    main()
