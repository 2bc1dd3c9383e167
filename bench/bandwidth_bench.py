"""Admission by bandwidth against head counts: link utilisation, speed and fairness.

One link of ``--budget`` bytes/s (``BANDWIDTH_LIMIT`` paces the host to it: loopback could go
far faster) and a crowd of mixed clients arriving within the first second, in a fixed random
order: 30 phones reading at 1 MB/s (8 MB files), 10 laptops at 10 MB/s (64 MB), 4 servers as
fast as they can (512 MB). Each client joins over SSE, downloads when admitted through a 64 KiB
receive buffer (so the server feels its speed), notes its slowest whole second, and checks its
bytes' SHA-256. Policies, each on
a fresh service:

* seed: no queue (everyone downloads at once: a capacity no crowd reaches);
* capacity 4 (the default) and capacity 16: a fixed head count;
* budget: ``EGRESS_BUDGET`` = the link, ``MIN_RATE`` = ``--min-rate``, ``QUEUE_CAPACITY`` 1000
  as the hard ceiling.

Per policy: link utilisation (bytes / time to serve everyone / budget), time to serve everyone,
p50/p95 of waiting and of download time, the slowest download's rate, downloads the server held
below min(their client's speed, MIN_RATE) for a whole second, Jain's fairness index of each client's rate over
what it could take (min of its speed and the link), and what was lost (errors, wrong bytes).

    python bench/bandwidth_bench.py [--budget 200000000] [--min-rate 20000000]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness import Service, make_file, percentile, queue_events

MB = 1_000_000
CLIENTS = (("phone", 30, 1 * MB, "phone.bin", 8 * MB), ("laptop", 10, 10 * MB, "laptop.bin", 64 * MB),
           ("server", 4, None, "server.bin", 512 * MB))


@dataclass
class Client:
    kind: str
    speed: float | None  # bytes/s the client can take (None: as fast as it comes)
    file: str
    size: int
    joined: float = 0.0
    admitted: float | None = None
    finished: float | None = None
    error: str | None = None
    right: bool = False
    slowest_second: float = 0.0  # bytes/s in its slowest whole second after the first
    seconds: list[float] = field(default_factory=list)  # bytes/s of each whole second after the first

    @property
    def rate(self) -> float:
        return self.size / (self.finished - self.admitted) if self.finished and self.admitted else 0.0


def fetch(base: str, path: str, client: Client, digest: str) -> None:
    """GET through a small receive buffer at the client's speed, hashing what arrives."""
    url = urlsplit(base)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.connect((url.hostname, url.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    head, _, body = head.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    sha, got, began = hashlib.sha256(body), len(body), time.monotonic()
    window, in_window, seconds = began + 1.0, 0, []  # the first second is TCP's start, not the pace
    while got < client.size:
        chunk = sock.recv(256 << 10)
        if not chunk:
            break
        sha.update(chunk)
        got += len(chunk)
        now = time.monotonic()
        if now >= window:
            in_window += len(chunk)
            if now >= window + 1:
                seconds.append(in_window / (now - window))
                window, in_window = now, 0
        if client.speed:
            ahead = got / client.speed - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    sock.close()
    client.seconds = seconds
    client.slowest_second = min(seconds) if seconds else got / max(1e-3, time.monotonic() - began)
    client.finished = time.monotonic()
    client.right = got == client.size and sha.hexdigest() == digest


def follow(service: Service, client: Client, digest: str) -> None:
    try:
        for kind, data in queue_events(service, client.file):
            if kind == "issued":
                client.joined = time.monotonic()
            elif kind == "error":
                raise RuntimeError(json.dumps(data))
            elif kind == "ready":
                client.admitted = time.monotonic()
                path = data["download_url"]
        fetch(service.url, path, client, digest)
    except Exception as exc:
        client.error = repr(exc)


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if values else 0.0


def run(work: Path, files: Path, digests: dict[str, str], budget: int, min_rate: int, policy: str,
        settings: dict[str, int]) -> dict[str, object]:
    service = Service(work / policy.replace(" ", "-"), files, BANDWIDTH_LIMIT=budget, **settings)
    clients = [Client(kind, speed, name, size) for kind, count, speed, name, size in CLIENTS for _ in range(count)]
    random.Random(12).shuffle(clients)
    try:
        threads = [threading.Thread(target=follow, args=(service, c, digests[c.file]), daemon=True) for c in clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
            time.sleep(1 / len(threads))  # everyone arrives within the first second
        for thread in threads:
            thread.join(1200)
        span = max((c.finished or started) for c in clients) - started
    finally:
        service.stop()
    done = [c for c in clients if c.finished and c.right]
    waits = [c.admitted - c.joined for c in clients if c.admitted]
    durations = [c.finished - c.admitted for c in done]
    owed = [min(c.speed or budget, min_rate) for c in done]
    return {
        "policy": policy,
        "utilisation": sum(c.size for c in done) / span / budget,
        "span": span,
        "wait p50": percentile(waits, 0.5), "wait p95": percentile(waits, 0.95),
        "download p50": percentile(durations, 0.5), "download p95": percentile(durations, 0.95),
        "slowest MB/s": min(c.rate for c in done) / MB,
        "held below": "/".join(str(sum(1 for c, o in zip(done, owed, strict=True)
                                       if c.kind == kind and c.slowest_second < 0.9 * o)) for kind, *_ in CLIENTS),
        "fastest servers MB/s": max((c.rate for c in done if c.speed is None), default=0) / MB,
        "Jain": jain([c.rate / min(c.speed or budget, budget) for c in done]),
        "lost": len(clients) - len(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=200 * MB, help="the link, bytes/s")
    parser.add_argument("--min-rate", type=int, default=20 * MB, help="MIN_RATE, bytes/s (a tenth of the link)")
    args = parser.parse_args()
    policies = {
        "seed (no queue)": {"QUEUE_CAPACITY": 1000},
        "capacity 4": {"QUEUE_CAPACITY": 4},
        "capacity 16": {"QUEUE_CAPACITY": 16},
        "budget": {"QUEUE_CAPACITY": 1000, "EGRESS_BUDGET": args.budget, "MIN_RATE": args.min_rate},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work, files = Path(tmp), Path(tmp) / "files"
        files.mkdir()
        digests = {}
        for _, _, _, name, size in CLIENTS:
            digests[name] = hashlib.sha256(make_file(files, name, size).read_bytes()).hexdigest()
        rows = [run(work, files, digests, args.budget, args.min_rate, name, settings)
                for name, settings in policies.items()]
    print(f"link {args.budget / MB:.0f} MB/s (BANDWIDTH_LIMIT), MIN_RATE {args.min_rate / MB:.0f} MB/s; "
          f"{sum(c[1] for c in CLIENTS)} clients: 30 x 1 MB/s (8 MB), 10 x 10 MB/s (64 MB), 4 unlimited (512 MB)")
    columns = ["utilisation", "span", "wait p50", "wait p95", "download p50", "download p95", "slowest MB/s",
               "held below", "fastest servers MB/s", "Jain", "lost"]
    print(f"{'policy':16}" + "".join(f"{c:>14}" for c in columns))
    for row in rows:
        cells = []
        for c in columns:
            value = row[c]
            cells.append(f"{value:>13.0%} " if c == "utilisation" else f"{value:>14.2f}" if isinstance(value, float)
                         else f"{value:>14}")
        print(f"{row['policy']:16}" + "".join(cells))
    print("\nspan, wait and download in seconds. held below: downloads that had a whole second slower than "
          "0.9 x min(their client's speed, MIN_RATE). Jain: fairness of rate / what the client could take (1 = fair). lost: errors or wrong bytes.")


if __name__ == "__main__":
    main()
