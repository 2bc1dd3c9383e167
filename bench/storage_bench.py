"""Files from S3-compatible storage (a real SeaweedFS): our proxied and cached downloads against
the store's own GET and nginx ``sendfile`` of the same bytes, in one run.

A 1 GiB object: the store's own GET (curl on a presigned URL), our proxied download with the
cache off, our first (filling) and second (cached) download with the cache on (the default
FILES_CACHE_BYTES), nginx from local disk; then 32 concurrent proxied downloads with RSS per
stream, total throughput and the p95 of ``GET /api/v1/queue`` meanwhile. Every timed download
is counted (bytes); one more download per mode is checked against the SHA-256: wrong bytes and
failed downloads are printed beside the speed.

QUEUE_CAPACITY is 64 (not the default 4) so that 32 downloads run at once.

    python bench/storage_bench.py [--size-mib 1024] [--repeat 5] [--concurrent 32] [--range-mib 256]
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from harness import BENCH_DATABASE_URL, Nginx, SeaweedS3, Service, curl_many, make_file, percentile


def sha_of_download(url: str) -> str:
    digest = hashlib.sha256()
    with requests.get(url, stream=True, timeout=600) as response:
        for block in response.iter_content(4 << 20):
            digest.update(block)
    return digest.hexdigest()


class Tally:
    def __init__(self) -> None:
        self.failed = 0
        self.wrong = 0

    def timed(self, urls: list[str], expected: int, ranged_from: int | None = None) -> float:
        """Bytes per second of ``urls`` downloaded at once; short ones count as failed."""
        seconds, total = curl_many(urls, ranged_from)
        if total != expected:
            self.failed += 1
        return total / seconds

    def check(self, url: str, sha256: str) -> None:
        if sha_of_download(url) != sha256:
            self.wrong += 1


def rss_kib(service: Service) -> int:
    return service.worker_rss_kib()


def concurrent_run(service: Service, args, size: int, tally: Tally) -> dict[str, float]:
    """``args.concurrent`` proxied downloads of different ranges at once, the queue polled meanwhile."""
    length = min(size, args.range_mib << 20)
    tokens = [service.admitted_token("big.bin") for _ in range(args.concurrent)]
    before = rss_kib(service)
    peak, latencies, stop = [before], [], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            requests.get(f"{service.url}/api/v1/queue", timeout=30).raise_for_status()
            latencies.append((time.perf_counter() - began) * 1000)
            peak.append(rss_kib(service))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    began = time.perf_counter()
    procs = []
    for i, token in enumerate(tokens):
        start = (i * length) % (size - length + 1)
        procs.append(subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "-r",
                                       f"{start}-{start + length - 1}", f"{service.url}/api/v1/downloads/{token}"],
                                      stdout=subprocess.PIPE, text=True))
    sizes = [int(p.communicate()[0] or 0) for p in procs]
    seconds = time.perf_counter() - began
    stop.set()
    watcher.join()
    tally.failed += sum(1 for got in sizes if got != length)
    return {"throughput": sum(sizes) / seconds, "rss_per_stream_kib": (max(peak) - before) / args.concurrent,
            "queue_p95_ms": percentile(latencies, 0.95), "queue_p50_ms": statistics.median(latencies),
            "polls": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--range-mib", type=int, default=256, help="bytes each concurrent download takes")
    args = parser.parse_args()
    size = args.size_mib << 20
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        work, files = Path(tmp), Path(tmp) / "files"
        files.mkdir()
        for folder in (work, files):
            folder.chmod(0o755)  # nginx's workers run as an unprivileged user
        local = make_file(files, "big.bin", size)
        with local.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        weed = SeaweedS3(work / "store").start()
        services: list[Service] = []
        nginx = Nginx(work, f"location / {{ root {files}; }}")
        try:
            client = weed.client()
            client.upload_file(str(local), weed.BUCKET, "bench/big.bin", ExtraArgs={"Metadata": {"sha256": digest}})
            presigned = client.generate_presigned_url("get_object", Params={"Bucket": weed.BUCKET, "Key": "bench/big.bin"},
                                                      ExpiresIn=3600)
            env = {**weed.env("bench"), "QUEUE_CAPACITY": 64, "ADMIT_TIMEOUT": 600, "STALL_TIMEOUT": 60}
            where = ["s3://files/bench/big.bin"]
            proxied = Service(work / "proxied", files, locations=where, FILES_CACHE_BYTES=0, **env)
            services.append(proxied)
            cached = Service(work / "cached", files, locations=where, FILES_CACHE_DIR=str(work / "cache"),
                             database_url=BENCH_DATABASE_URL + "_cached", **env)
            services.append(cached)
            first = tally.timed([f"{cached.url}/api/v1/downloads/{cached.admitted_token('big.bin')}"], size)
            entry = work / "cache" / digest
            deadline = time.monotonic() + 300
            while not entry.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            cases = {
                "store's own GET (curl, presigned)": lambda: presigned,
                "ours, proxied (cache off)": lambda: f"{proxied.url}/api/v1/downloads/{proxied.admitted_token('big.bin')}",
                "ours, cached (sendfile)": lambda: f"{cached.url}/api/v1/downloads/{cached.admitted_token('big.bin')}",
                "nginx sendfile": lambda: f"{nginx.url}/big.bin",
            }
            rows = {label: [] for label in cases}
            for _ in range(args.repeat):  # the cases take turns, so a busy moment hurts each alike
                for label, url in cases.items():
                    rows[label].append(tally.timed([url()], size))
            tally.check(cases["ours, proxied (cache off)"](), digest)
            tally.check(cases["ours, cached (sendfile)"](), digest)
            cached.stop()
            services.remove(cached)
            concurrent = concurrent_run(proxied, args, size, tally)
        finally:
            for service in services:
                service.stop()
            nginx.stop()
            weed.stop()

    store = statistics.median(rows["store's own GET (curl, presigned)"])
    peer = statistics.median(rows["nginx sendfile"])
    print(f"\nA {args.size_mib} MiB object in SeaweedFS on loopback, one download at a time, median of {args.repeat}")
    print(f"{'case':<36}{'GB/s':>8}{'vs store GET':>14}{'vs nginx':>10}")
    for label, values in rows.items():
        value = statistics.median(values)
        print(f"{label:<36}{value / 1e9:>8.2f}{value / store:>14.2f}{value / peer:>10.2f}")
    print(f"{'ours, first (filling the cache)':<36}{first / 1e9:>8.2f}{first / store:>14.2f}{first / peer:>10.2f}")
    print(f"\n{args.concurrent} concurrent proxied downloads of {min(size, args.range_mib << 20) >> 20} MiB each:"
          f" {concurrent['throughput'] / 1e9:.2f} GB/s in total,"
          f" {concurrent['rss_per_stream_kib']:.0f} KiB worker RSS per stream,"
          f" GET /api/v1/queue p50 {concurrent['queue_p50_ms']:.1f} ms, p95 {concurrent['queue_p95_ms']:.1f} ms"
          f" ({concurrent['polls']} polls)")
    print(f"failed downloads: {tally.failed}   wrong bytes (downloads failing the SHA-256 check): {tally.wrong}")


if __name__ == "__main__":
    main()
