"""Idle SSE capacity: many waiting clients on one 2-core host, what each costs, and what is lost.

Opens --clients SSE streams (gevent client processes, each bound to its own 127.0.0.x source
address: one address has ~28,000 ports) to the service under gunicorn, all waiting behind
one held slot, idles for --idle seconds (longer than the default 30 s wait grace), then frees the
slot --releases times. Prints waiters lost (streams that erred or ended, places gone from
Redis), worker RSS per waiter, Redis CPU per idle waiter per second from ``INFO commandstats``
against the per-waiter presence renewal this design replaced (replayed on the same Redis), and
slot release -> ``ready`` over SSE. The peer is the seed's 1-second polling loop at the largest
count it holds here (bench/queue_bench.py's loop, run in the same invocation).

Defaults a user gets, except: WEB_CONCURRENCY = clients / 12,500 (a process may hold at most
20,000 file descriptors here) and ADMIT_TIMEOUT = 3600 (the one held slot must not lapse
during the idle window).

    python bench/sse_capacity_bench.py [--clients 50000] [--idle 65] [--seed-waiters 10000]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path

from harness import Service, make_file, percentile
from queue_bench import seed_peer

from testbed.crowd import hold_streams

SECRET = "bench-secret"
PER_PROCESS = 12_500
OLD_TOUCH = """
local args = {}
for i = 2, #ARGV do args[#args + 1] = ARGV[1]; args[#args + 1] = ARGV[i] end
return redis.call('ZADD', KEYS[1], 'XX', unpack(args))
"""


def old_touch_cost(client, ids: list[str], per_worker: int) -> float:
    """Redis µs per waiter for one renewal round of the replaced design (one script per worker,
    each waiter's presence re-set; chunked at 3,000 here, past which Redis's unpack fails)."""
    scratch = "{bench}:old-presence"
    for start in range(0, len(ids), 10_000):
        client.zadd(scratch, dict.fromkeys(ids[start:start + 10000], 0))
    touch = client.register_script(OLD_TOUCH)
    client.config_resetstat()
    for start in range(0, len(ids), per_worker):
        group = ids[start:start + per_worker]
        for chunk in range(0, len(group), 3_000):
            touch(keys=[scratch], args=[int(time.time() * 1000) + 30_000, *group[chunk:chunk + 3_000]])
    usec = sum(v["usec"] for k, v in client.info("commandstats").items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    client.delete(scratch)
    return usec / len(ids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=65.0)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--seed-waiters", type=int, default=10_000)
    args = parser.parse_args()

    from app.services.tokens import issue_token, verify_token

    procs_needed = max(1, math.ceil(args.clients / PER_PROCESS))
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        make_file(files, "small.bin", 4096)
        service = Service(Path(tmp), files, workers=procs_needed, QUEUE_CAPACITY=1, ADMIT_TIMEOUT=3600,
                          WORKER_CONNECTIONS=20_000)
        procs = []
        lost: list[tuple[str, str]] = []
        try:
            holder = verify_token(SECRET, service.admitted_token("small.bin")).token_id
            file_id = service.file_ids["small.bin"]
            ctx = multiprocessing.get_context("spawn")

            def spawn(tokens: list[str], source: str):
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=hold_streams, args=(service.server.port, tokens, writer, source))
                proc.start()
                procs.append(proc)
                return reader

            warm = spawn([issue_token(SECRET, file_id, 7200)[0] for _ in range(50)], "127.0.0.1")
            assert warm.poll(120), "warm-up clients did not connect"
            warm_held = warm.recv()[1]
            time.sleep(2)
            baseline = service.worker_rss_kib()

            per = args.clients // procs_needed
            tokens = [[issue_token(SECRET, file_id, 7200)[0] for _ in range(per)] for _ in range(procs_needed)]
            began = time.time()
            readers = [spawn(group, f"127.0.0.{2 + n}") for n, group in enumerate(tokens)]
            held = failed = 0
            for reader in readers:
                assert reader.poll(1800), "clients did not finish connecting"
                kind, ok, bad = reader.recv()
                assert kind == "connected", (kind, ok, bad)
                held, failed = held + ok, failed + bad
            connect_seconds = time.time() - began
            held += warm_held
            time.sleep(3)
            loaded = service.worker_rss_kib()
            engine = service.engine()
            waiting = engine.summary().waiting
            client = engine.client
            client.config_resetstat()
            cpu_before = client.info("cpu")
            time.sleep(args.idle)
            cpu_after = client.info("cpu")
            stats = client.info("commandstats")
            idle_usec = sum(v["usec"] for v in stats.values())
            idle_calls = sum(v["calls"] for v in stats.values())
            redis_cpu = sum(cpu_after[k] - cpu_before[k] for k in ("used_cpu_sys", "used_cpu_user"))
            for reader in [warm, *readers]:
                while reader.poll(0):
                    event = reader.recv()
                    if event[0] == "lost":
                        lost.append(event[1:])
            still = engine.summary().waiting

            latencies = []
            for _ in range(args.releases):
                released = time.time()
                engine.leave(holder)
                ready = wait([warm, *readers], timeout=10)
                assert ready, "nobody was woken"
                event = ready[0].recv()
                while event[0] == "lost":
                    lost.append(event[1:])
                    event = ready[0].recv()
                _, token, woke = event
                latencies.append((woke - released) * 1000)
                holder = verify_token(SECRET, token).token_id
                time.sleep(0.1)
            all_ids = [verify_token(SECRET, t).token_id for group in tokens for t in group]
            old_usec = old_touch_cost(client, all_ids, per)
        finally:
            for proc in procs:
                proc.kill()
            service.stop()

    seed = seed_peer(args.seed_waiters)
    per_waiter = (loaded - baseline) / max(1, held - warm_held)
    waiters_idle = max(1, held)
    ours_us = idle_usec / waiters_idle / args.idle
    old_us = old_usec / 10.0  # the replaced design renewed every waiter every 10 s (grace 30 s)
    print(f"\nIdle SSE waiters on one host: gunicorn, {procs_needed} gevent workers, "
          f"{procs_needed} client processes on 127.0.0.2-{1 + procs_needed}, idle {args.idle:.0f} s")
    rows = [
        ("streams held", f"{held}"),
        ("streams refused / failed to connect", f"{failed}"),
        ("waiters lost (stream erred or ended)", f"{len(lost)}"),
        ("waiting in Redis after connect", f"{waiting}"),
        ("waiting in Redis after idle (lost: held - this)", f"{still}  (lost {held - still})"),
        ("time to connect all (s)", f"{connect_seconds:.1f}"),
        ("worker RSS before / with all streams (MiB)", f"{baseline / 1024:.1f} / {loaded / 1024:.1f}"),
        ("RSS per waiter (KiB)", f"{per_waiter:.1f}"),
        ("idle Redis calls / waiter / s", f"{idle_calls / waiters_idle / args.idle:.6f}"),
        ("idle Redis µs / waiter / s (commandstats)", f"{ours_us:.5f}"),
        ("idle Redis CPU, whole server (% of a core)", f"{100 * redis_cpu / args.idle:.2f}"),
        ("replaced per-waiter touch: µs / waiter / s", f"{old_us:.5f}"),
        ("release -> ready over SSE p50 / p99 / max (ms)",
         f"{statistics.median(latencies):.2f} / {percentile(latencies, 0.99):.2f} / {max(latencies):.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<52}{value:>24}")
    if lost:
        print("first losses:", lost[:5])
    print(f"\npeer, the seed's 1 s polling loop at {seed['waiters']} waiters (4 gevent processes): "
          f"{seed['idle_cmds_per_waiter_s']:.3f} Redis calls / waiter / s, "
          f"{seed['idle_usec_per_waiter_s']:.3f} µs / waiter / s, wake p50 {seed['wake_p50_ms']:.0f} ms, "
          f"p99 {seed['wake_p99_ms']:.0f} ms")
    print(f"ratios: Redis µs per idle waiter, seed / ours = {seed['idle_usec_per_waiter_s'] / max(ours_us, 1e-9):.0f}x;"
          f" replaced touch / ours = {old_us / max(ours_us, 1e-9):.0f}x")


if __name__ == "__main__":
    main()
