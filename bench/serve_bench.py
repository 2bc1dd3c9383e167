"""File serving benchmark: our gunicorn+gevent download path against nginx ``sendfile on``.

One run on loopback, 1 GiB file in the page cache: single and 8 parallel downloads, plain
and ranged from the middle (median of --repeat runs), with the server's CPU seconds per GiB
served (ours: gunicorn's master and workers plus the queue's redis-server; nginx: its master and
workers; the curl clients not counted); then the wake-up latency an SSE waiter on the same
worker sees while 4 downloads run, against the same figure idle.

    python bench/serve_bench.py [--size-mib 1024] [--repeat 3] [--lag-samples 40]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from harness import Nginx, Service, cpu_seconds, curl_many, make_file, percentile, process_tree

from testbed.sse import sse


def token_id(token: str) -> str:
    from app.services.tokens import verify_token

    return verify_token("bench-secret", token).token_id


def served(pids: list[int], urls: list[str], start: int | None, expected: int) -> tuple[float, float]:
    """Download ``urls`` at once: (bytes/s, server CPU seconds per GiB), every byte counted."""
    cpu = cpu_seconds(pids)
    seconds, total = curl_many(urls, start)
    assert total == expected, (total, expected)  # nothing lost or cut short
    return total / seconds, (cpu_seconds(pids) - cpu) / (total / (1 << 30))


def throughput(args, service: Service, nginx: Nginx, size: int) -> list[tuple[str, float, float, float, float]]:
    rows = []
    ours_pids = [*process_tree(service.server.proc.pid), service.redis.proc.pid]
    nginx_pids = process_tree(nginx.proc.pid)
    for parallel in (1, 8):
        for ranged in (False, True):
            start = size // 2 if ranged else None
            expected = parallel * (size - (start or 0))
            ours, peer = [], []
            for _ in range(args.repeat):
                tokens = [service.admitted_token("big.bin") for _ in range(parallel)]
                ours.append(served(ours_pids, [f"{service.url}/api/v1/downloads/{t}" for t in tokens], start,
                                   expected))
                peer.append(served(nginx_pids, [f"{nginx.url}/big.bin"] * parallel, start, expected))
            label = f"{parallel} x {'ranged from middle' if ranged else 'whole file'}"
            rows.append((label, statistics.median(r for r, _ in ours), statistics.median(r for r, _ in peer),
                         statistics.median(c for _, c in ours), statistics.median(c for _, c in peer)))
    return rows


def wake_latencies(service: Service, samples: int) -> list[float]:
    """Release a held slot in Redis; time until the SSE waiter on the worker hears ``ready``."""
    engine = service.engine()
    holder = service.admitted_token("small.bin")
    latencies = []
    for _ in range(samples):
        token = requests.post(f"{service.url}/api/v1/files/{service.file_ids['small.bin']}/tokens",
                              timeout=10).json()["token"]
        stream = sse(f"{service.url}/api/v1/queue/{token}", timeout=30)
        first = next(stream)
        assert first.event == "position", first
        released = time.perf_counter()
        engine.leave(token_id(holder))
        ready = next(stream)
        latencies.append((time.perf_counter() - released) * 1000)
        assert ready.event == "ready", ready
        stream.close()
        holder = token
    requests.delete(f"{service.url}/api/v1/queue/{holder}", timeout=10)
    return latencies


def lag_under_load(args, service: Service, size: int) -> tuple[list[float], list[float]]:
    # 4 slots held by big-file tokens: idle first, then downloading without ever finishing
    # (each pass stops one byte short), looping for the whole loaded measurement
    tokens = [service.admitted_token("big.bin") for _ in range(4)]
    idle = wake_latencies(service, args.lag_samples)
    stop = threading.Event()

    def loop(token: str) -> None:
        while not stop.is_set():
            rate = ["--limit-rate", args.load_rate] if args.load_rate else []
            subprocess.run(["curl", "-s", "-o", "/dev/null", *rate, "-r", f"0-{size - 2}",
                            f"{service.url}/api/v1/downloads/{token}"], timeout=300)

    threads = [threading.Thread(target=loop, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    try:
        loaded = wake_latencies(service, args.lag_samples)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    return idle, loaded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lag-samples", type=int, default=40)
    parser.add_argument("--load-rate", default="", help="curl --limit-rate for the 4 loading downloads")
    parser.add_argument("--only-lag", action="store_true")
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        work, files = Path(tmp), Path(tmp) / "files"
        files.mkdir()
        for folder in (work, files):
            folder.chmod(0o755)  # nginx's workers run as an unprivileged user
        make_file(files, "big.bin", size)
        make_file(files, "small.bin", 4096)
        rows = []
        if not args.only_lag:
            nginx = Nginx(work, f"location / {{ root {files}; }}")
            service = Service(work, files, workers=2, QUEUE_CAPACITY=64, ADMIT_TIMEOUT=600, STALL_TIMEOUT=60)
            try:
                rows = throughput(args, service, nginx, size)
            finally:
                service.stop()
                nginx.stop()
        # lag: one worker, so the SSE waiter shares the loop with the 4 downloads
        lag_service = Service(work / "lag", files, workers=1, QUEUE_CAPACITY=5, ADMIT_TIMEOUT=600,
                              STALL_TIMEOUT=60, RESUME_GRACE=600)
        try:
            idle, loaded = lag_under_load(args, lag_service, size)
        finally:
            lag_service.stop()

    if rows:
        print(f"\nFile serving, {args.size_mib} MiB from the page cache over loopback, median of {args.repeat}")
        print(f"{'case':<28}{'ours GB/s':>11}{'nginx GB/s':>12}{'ours/nginx':>12}"
              f"{'ours CPU s/GiB':>16}{'nginx CPU s/GiB':>17}{'CPU ours/nginx':>16}")
        for label, ours, peer, ours_cpu, peer_cpu in rows:
            print(f"{label:<28}{ours / 1e9:>11.2f}{peer / 1e9:>12.2f}{ours / peer:>12.2f}"
                  f"{ours_cpu:>16.3f}{peer_cpu:>17.3f}{ours_cpu / max(peer_cpu, 1e-9):>16.2f}")
    print(f"\nSSE waiter wake-up on the same gevent worker (release -> 'ready' received), {args.lag_samples} samples")
    print(f"{'condition':<28}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    loaded_label = f"4 downloads running{' at ' + args.load_rate + '/s' if args.load_rate else ''}"
    for label, values in (("idle", idle), (loaded_label, loaded)):
        print(f"{label:<28}{statistics.median(values):>10.2f}{percentile(values, 0.99):>10.2f}{max(values):>10.2f}")


if __name__ == "__main__":
    main()
