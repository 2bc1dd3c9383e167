"""Idle SSE capacity: how many waiting clients one 2-core host holds, and what each costs.

Opens --clients SSE streams (raw sockets from gevent client processes) to the service under
gunicorn with 2 gevent workers, all waiting behind one held slot; reports worker RSS per
waiter and the idle Redis commands per waiter per second on the real server. The peer is
the seed's design, whose per-waiter polling is measured by bench/queue_bench.py.

    python bench/sse_capacity_bench.py [--clients 10000] [--client-procs 2]
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from harness import Service, make_file, percentile

SECRET = "bench-secret"


def hold_streams(port: int, tokens: list[str], report) -> None:
    """Open one SSE stream per token, read up to its first position event, then stay idle."""
    from gevent import monkey

    monkey.patch_all()
    import socket

    import gevent
    from gevent.pool import Pool

    held, failed = [], []

    def watch(sock, token: str) -> None:
        """Read every event (as a browser would); report the moment ``ready`` arrives."""
        tail = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            if b"event: ready" in tail + chunk:
                report.send(("ready", token, time.time()))
                sock.close()
                return
            tail = chunk[-32:]

    def open_stream(token: str) -> None:
        for _ in range(20):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                sock.sendall(f"GET /api/v1/queue/{token} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                buf = b""
                while b"event: position" not in buf:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise OSError("closed")
                    buf += chunk
                held.append(sock)
                gevent.spawn(watch, sock, token)
                return
            except OSError:
                gevent.sleep(0.2)
        failed.append(token)

    pool = Pool(100)
    for token in tokens:
        pool.spawn(open_stream, token)
    pool.join()
    report.send(("connected", len(held), len(failed)))  # a pipe: no feeder thread, safe after patching
    gevent.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--releases", type=int, default=100)
    args = parser.parse_args()

    from multiprocessing.connection import wait

    from app.services.tokens import issue_token, verify_token

    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        make_file(files, "small.bin", 4096)
        service = Service(Path(tmp), files, workers=2, QUEUE_CAPACITY=1, WAIT_GRACE=120,
                          ADMIT_TIMEOUT=3600, MAX_QUEUE_LENGTH=1_000_000)
        procs = []
        try:
            holder = verify_token(SECRET, service.admitted_token("small.bin")).token_id
            file_id = service.file_ids["small.bin"]
            ctx = multiprocessing.get_context("spawn")

            def spawn(tokens: list[str]):
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=hold_streams, args=(service.server.port, tokens, writer))
                proc.start()
                procs.append(proc)
                return reader

            warm_reader = spawn([issue_token(SECRET, file_id, 7200)[0] for _ in range(50)])
            assert warm_reader.poll(120), "warm-up clients did not connect"
            warm_reader.recv()
            time.sleep(2)
            baseline = service.worker_rss_kib()

            per = args.clients // args.client_procs
            began = time.time()
            readers = [spawn([issue_token(SECRET, file_id, 7200)[0] for _ in range(per)])
                       for _ in range(args.client_procs)]
            held = failed = 0
            for reader in readers:
                assert reader.poll(900), "clients did not finish connecting"
                _, ok, bad = reader.recv()
                held, failed = held + ok, failed + bad
            connect_seconds = time.time() - began
            time.sleep(3)
            loaded = service.worker_rss_kib()
            engine = service.engine()
            waiting = engine.summary().waiting
            client = engine.client
            client.config_resetstat()
            time.sleep(args.idle)
            calls = sum(v["calls"] for v in client.info("commandstats").values())
            still = engine.summary().waiting

            # churn: free the slot, time until the head of 10,000 waiters hears ``ready``
            latencies = []
            for _ in range(args.releases):
                released = time.time()
                engine.leave(holder)
                ready = wait([warm_reader, *readers], timeout=10)
                assert ready, "nobody was woken"
                _, token, woke = ready[0].recv()
                latencies.append((woke - released) * 1000)
                holder = verify_token(SECRET, token).token_id
                time.sleep(0.1)
        finally:
            for proc in procs:
                proc.kill()
            service.stop()

    per_waiter = (loaded - baseline) / max(1, held)
    print(f"\nIdle SSE waiters on one host: gunicorn, 2 gevent workers, {args.client_procs} client processes")
    print(f"{'streams held':<44}{held:>12}")
    print(f"{'streams refused / failed':<44}{failed:>12}")
    print(f"{'waiting in Redis after connect':<44}{waiting:>12}")
    print(f"{'waiting after idle period':<44}{still:>12}")
    print(f"{'time to connect all (s)':<44}{connect_seconds:>12.1f}")
    print(f"{'worker RSS before (MiB)':<44}{baseline / 1024:>12.1f}")
    print(f"{'worker RSS with all streams (MiB)':<44}{loaded / 1024:>12.1f}")
    print(f"{'RSS per waiter (KiB)':<44}{per_waiter:>12.1f}")
    print(f"{'idle Redis cmds / waiter / s':<44}{calls / max(1, held) / args.idle:>12.5f}")
    print(f"{'release -> ready over SSE, p50 (ms)':<44}{statistics.median(latencies):>12.2f}")
    print(f"{'release -> ready over SSE, p90 (ms)':<44}{percentile(latencies, 0.90):>12.2f}")
    print(f"{'release -> ready over SSE, p99 (ms)':<44}{percentile(latencies, 0.99):>12.2f}")
    print(f"{'release -> ready over SSE, max (ms)':<44}{max(latencies):>12.2f}")
    print("peer (the seed's loop, measured in queue_bench.py): 2 Redis cmds / waiter / s, wake within 1 s")


if __name__ == "__main__":
    main()
