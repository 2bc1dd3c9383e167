"""What each queue script costs Redis with a long line, and the slowest single call.

Fills a private redis-server's queue with --waiting waiters (defaults a user gets), then times
each operation from ``INFO commandstats`` (Redis-side µs per call): join, admission (a leave that
admits the head), progress report, status of one token and of a resync chunk, and the reap each
process sends once a second. Then the worst cases for a bounded design: a dead process that held
half the line, and every remaining place lapsing at once, reclaimed batch by batch. ``SLOWLOG``
(threshold 200 µs) gives the slowest single script call of the whole run. Nothing is lost: the line's
length is checked after every phase. The peer is the seed's loop: ZRANK + SCARD per waiter per
second (measured here on the same line).

    python bench/script_cost_bench.py [--waiting 100000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import RedisProcess

N = 1000


def per_call(client, fn, count: int = N) -> float:
    """Redis µs per script call over ``count`` calls of ``fn`` (commandstats: EVALSHA only)."""
    client.config_resetstat()
    for n in range(count):
        fn(n)
    stats = client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    usec = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return usec / max(1, calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=100_000)
    args = parser.parse_args()

    import redis

    from app.queue.constants import STATUS_CHUNK
    from app.queue.engine import QueueEngine
    from app.queue.scripts import NAMES
    from app.queue.settings import QueueSettings

    far = time.time() + 7200
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            client = redis.Redis(port=server.port)
            settings = QueueSettings(capacity=1, max_queue_length=10 * args.waiting)
            engine = QueueEngine(client, "cost", settings)  # a living process holding half the line
            dead = QueueEngine(client, "cost", settings)  # one that will die holding the other half
            janitor = QueueEngine(client, "cost", settings, owner="")  # reclaims, holds nothing
            engine.join("holder", 1, 10**9, far)
            for n in range(args.waiting):
                (dead if n % 2 else engine).join(f"w{n:07d}", 1, 10**9, far, streamed=True)
            client.config_set("slowlog-log-slower-than", 200)
            client.config_set("slowlog-max-len", 100_000)
            client.slowlog_reset()
            line = engine.summary().waiting
            rows.append(("waiting at start", f"{line}"))
            rows.append(("join (µs)", f"{per_call(client, lambda n: engine.join(f'j{n}', 1, 10**9, far)):.1f}"))
            holder = ["holder"]

            def admit(_n: int) -> None:
                snap = engine.leave(holder[0])
                holder[0] = snap.admitted[0]

            rows.append(("admission: leave + admit the head (µs)", f"{per_call(client, admit):.1f}"))
            engine.start(holder[0], "c1", 10**9)
            rows.append(("progress report (µs)",
                         f"{per_call(client, lambda n: engine.progress(holder[0], 'c1', 0, (n + 1) * 1000, 1000, range_end=10**9)):.1f}"))
            ids = [f"w{n:07d}" for n in range(2 * N, 2 * N + STATUS_CHUNK)]
            rows.append(("status of one token (µs)", f"{per_call(client, lambda n: engine.status([ids[n % len(ids)]])):.1f}"))
            rows.append((f"status of a resync chunk, {STATUS_CHUNK} ids (µs)",
                         f"{per_call(client, lambda n: engine.status(ids, mode='resync'), 100):.1f}"))
            rows.append(("reap, a process's sign of life (µs)", f"{per_call(client, lambda n: engine.reap()):.1f}"))
            seed_zrank = per_seed(client, args.waiting)
            dead.reap()  # its last sign of life
            before = engine.summary().waiting
            client.hincrby(engine.keys.counters, "skew", 6_000)  # 6 s later it counts as dead
            engine.reap()
            calls, started = 0, time.perf_counter()
            while calls < 10_000:
                calls += 1
                if not janitor.reap().more and not client.zcount(engine.keys.key("owners"), "-inf", 0):
                    break
            rows.append(("dead process holding half the line: reap calls", f"{calls}"))
            after_owner = engine.summary().waiting
            client.hincrby(engine.keys.counters, "skew", 31_000)  # every process dead, every grace over
            lapse_calls = 0
            while lapse_calls < 10_000:
                lapse_calls += 1
                if not janitor.reap().more and not engine.client.zcard(engine.keys.waiting):
                    break
            rows.append(("every place lapsing at once: reap calls", f"{lapse_calls}"))
            rows.append(("wall time of both reclaims (s)", f"{time.perf_counter() - started:.1f}"))
            names = {getattr(engine.scripts, name).sha: name for name in NAMES}
            slow = [e for e in client.slowlog_get(100_000) if e["command"].startswith(b"EVALSHA")]
            worst = max(slow, key=lambda e: e["duration"], default=None)
            rows.append(("script calls over 200 µs (SLOWLOG)", f"{len(slow)}"))
            rows.append(("slowest single script call (µs, SLOWLOG)",
                         f"{names[worst['command'].split()[1].decode()]} {worst['duration']}" if worst else "< 200"))
            rows.append(("lost: places gone before their grace", f"{before - after_owner}"))
            rows.append(("left in line after everything lapsed", f"{engine.client.zcard(engine.keys.waiting)}"))
            rows.append(("seed's loop: ZRANK + SCARD per waiter per s (µs)", f"{seed_zrank:.2f}"))
        finally:
            server.stop()
    print(f"\nQueue scripts with {args.waiting} waiting (Redis-side µs per call, INFO commandstats)")
    for name, value in rows:
        print(f"{name:<52}{value:>14}")


def per_seed(client, waiting: int) -> float:
    """The seed's poll, on a line as long as ours: ZRANK + SCARD, µs per waiter per second."""
    key = "{seed}:queue"
    pipe = client.pipeline(transaction=False)
    for n in range(waiting):
        pipe.zadd(key, {f"s{n}": n})
        if n % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    client.config_resetstat()
    for n in range(0, waiting, max(1, waiting // N)):
        client.zrank(key, f"s{n}")
        client.scard("{seed}:active")
    stats = client.info("commandstats")
    client.unlink(key)
    return sum(stats[k]["usec"] for k in ("cmdstat_zrank", "cmdstat_scard")) / stats["cmdstat_zrank"]["calls"]


if __name__ == "__main__":
    main()
