"""ETA accuracy: what waiters were told against when their turn really came.

Clients arrive four a second and download files of mixed sizes (8, 24, 48 MiB) at mixed speeds
(paced readers: 1, 3, 10 MB/s); each follows the queue over SSE and records every ``position`` event.
Once a second, for every client still waiting, three predictions of its remaining wait are
compared with the wait it actually had:

* ours: the last ``eta_seconds`` the server sent (it counts down between events);
* rate only: position / admission rate over the last 32 admissions (our previous estimate);
* Cloudflare's published method: position / the outflow averaged over the last 5 minutes.

Prints p50 / p90 of the absolute error by position, how often a method had no estimate, and
what was lost (errors, wrong bytes). Runs on the defaults a user gets (QUEUE_CAPACITY=4 and
so on); only the token rate limit is lifted, since all clients share one address.

Then a bursty reader without host pacing: A downloads a 100 MiB file with ``curl --limit-rate``
(it acknowledges in steps of its buffer), B joins a second later behind it (capacity 1: the
line is about A's remaining time alone); B's every told wait against the wait it had, and at
each of A's /progress figures the queue's figure for B asked at the same moment (B's status): the
two estimates of one download must agree.

    python bench/eta_bench.py [--clients 30] [--arrival 0.25] [--burst-rate 4M] [--bursty-only]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from harness import Service, make_file, percentile, queue_events, sse_events

SPEEDS = (1e6, 3e6, 10e6)  # bytes/s of the paced readers
SIZES = (("small.bin", 8 << 20), ("medium.bin", 24 << 20), ("large.bin", 48 << 20))
WINDOW_RATE, WINDOW_CLOUDFLARE = 32, 300.0
BUCKETS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, 10**9))


@dataclass
class Client:
    n: int
    file: str
    speed: float
    joined_at: float = 0.0
    admitted_at: float | None = None
    events: list[tuple[float, int, int | None]] = field(default_factory=list)  # (time, position, eta)
    error: str | None = None
    sha_ok: bool = False


def follow(service: Service, client: Client, digests: dict[str, str]) -> None:
    try:
        for kind, data in queue_events(service, client.file, timeout=600):
            if kind == "issued":
                client.joined_at = time.monotonic()
            elif kind == "position":
                client.events.append((time.monotonic(), data["position"], data["eta_seconds"]))
            elif kind == "error":
                client.error = json.dumps(data)
                return
            elif kind == "ready":
                client.admitted_at = time.monotonic()
                url = service.url + data["download_url"]
        digest, began, got = hashlib.sha256(), time.monotonic(), 0
        with requests.get(url, stream=True, timeout=600) as response:
            for chunk in response.iter_content(64 << 10):
                digest.update(chunk)
                got += len(chunk)
                ahead = got / client.speed - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        client.sha_ok = digest.hexdigest() == digests[client.file]
    except Exception as exc:
        client.error = repr(exc)


def predictions(clients: list[Client], admissions: list[float], t: float, c: Client) -> dict[str, float | None]:
    """Each method's predicted remaining wait of ``c`` at time ``t`` (None: no estimate)."""
    seen = [e for e in c.events if e[0] <= t]
    if not seen:
        return {}
    at, position, eta = seen[-1]
    ours = None if eta is None else max(0.0, at + eta - t)
    past = [a for a in admissions if a <= t]
    recent = past[-WINDOW_RATE:]
    rate_only = None
    if len(recent) >= 2 and t > recent[0]:
        rate_only = position / ((len(recent) - 1) / (t - recent[0]))
    cloudflare = None
    if past:
        window = min(WINDOW_CLOUDFLARE, t - past[0])
        outflow = len([a for a in past if a >= t - window])
        if window > 0 and outflow:
            cloudflare = position / (outflow / window)
    return {"ours": ours, "rate only": rate_only, "Cloudflare": cloudflare, "position": position}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--arrival", type=float, default=0.25, help="seconds between two arrivals")
    parser.add_argument("--burst-rate", default="4M", help="curl --limit-rate of the bursty reader")
    parser.add_argument("--bursty-only", action="store_true", help="only the bursty reader (about 40 s)")
    args = parser.parse_args()
    if args.bursty_only:
        behind_a_bursty_reader(args.burst_rate)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work, files = Path(tmp), Path(tmp) / "files"
        files.mkdir()
        digests = {name: hashlib.sha256(make_file(files, name, size).read_bytes()).hexdigest() for name, size in SIZES}
        service = Service(work / "service", files)
        try:
            clients = [Client(n, SIZES[n % 3][0], SPEEDS[(n // 3) % 3]) for n in range(args.clients)]
            threads = []
            started = time.monotonic()
            for client in clients:
                thread = threading.Thread(target=follow, args=(service, client, digests), daemon=True)
                thread.start()
                threads.append(thread)
                time.sleep(args.arrival)
            for thread in threads:
                thread.join(900)
            elapsed = time.monotonic() - started
        finally:
            service.stop()

    admissions = sorted(c.admitted_at for c in clients if c.admitted_at is not None)
    errors: dict[str, dict[tuple[int, int], list[float]]] = {}
    missing: dict[str, int] = {}
    samples = 0
    for c in clients:
        if c.admitted_at is None or not c.events:
            continue
        t = c.events[0][0]
        while t < c.admitted_at:
            guess = predictions(clients, admissions, t, c)
            actual = c.admitted_at - t
            bucket = next(b for b in BUCKETS if b[0] <= guess["position"] <= b[1])
            samples += 1
            for method in ("ours", "rate only", "Cloudflare"):
                if guess[method] is None:
                    missing[method] = missing.get(method, 0) + 1
                else:
                    errors.setdefault(method, {}).setdefault(bucket, []).append(abs(guess[method] - actual))
            t += 1.0

    lost = sum(1 for c in clients if c.error)
    wrong = sum(1 for c in clients if c.admitted_at is not None and not c.error and not c.sha_ok)
    print(f"\nETA error, {len(clients)} clients arriving every {args.arrival:g} s, capacity 4 (default), "
          f"mixed sizes (8/24/48 MiB) and readers (1/3/10 MB/s); {samples} one-second samples, {elapsed:.0f} s")
    print(f"{'position':>10} | " + " | ".join(f"{m:>22}" for m in ("ours", "rate only", "Cloudflare")))
    print(f"{'':>10} | " + " | ".join(f"{'p50 / p90 abs error (s)':>22}" for _ in range(3)))
    for bucket in BUCKETS:
        label = f"{bucket[0]}" if bucket[0] == bucket[1] else f"{bucket[0]}-{bucket[1] if bucket[1] < 10**9 else ''}"
        cells = []
        for method in ("ours", "rate only", "Cloudflare"):
            values = errors.get(method, {}).get(bucket, [])
            cells.append(f"{percentile(values, 0.5):9.1f} / {percentile(values, 0.9):6.1f} (n={len(values)})"
                         if values else f"{'-':>22}")
        print(f"{label:>10} | " + " | ".join(f"{cell:>22}" for cell in cells))
    print("samples without an estimate: " + ", ".join(f"{m} {missing.get(m, 0)}"
                                                      for m in ("ours", "rate only", "Cloudflare")))
    print(f"lost: {lost} clients erred, {wrong} downloads with wrong bytes, "
          f"{len(clients) - len(admissions)} never admitted")
    behind_a_bursty_reader(args.burst_rate)


def progress_etas(service: Service, token: str, behind: list[str],
                  seen: list[tuple[float, int | None, int | None]]) -> None:
    """Follow A's /progress: the ETA its own page shows, and with each the queue's wait for the
    waiter ``behind`` it asked at once (B's status, once B has a token)."""
    for kind, data in sse_events(f"{service.url}/api/v1/queue/{token}/progress", timeout=600):
        if kind == "progress":
            queue = None
            if behind:
                queue = requests.get(f"{service.url}/api/v1/queue/{behind[0]}/status", timeout=10).json()
            seen.append((time.monotonic(), data.get("eta_seconds"), queue and queue.get("eta_seconds")))


def behind_a_bursty_reader(rate: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        make_file(files, "big.bin", 100 << 20)
        # capacity 1: B's wait is A's remaining time, nothing else
        service = Service(Path(tmp) / "service", files, QUEUE_CAPACITY=1)
        try:
            first = service.admitted_token("big.bin")
            began = time.monotonic()
            reader = subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "--limit-rate",
                                       rate, f"{service.url}/api/v1/downloads/{first}"], stdout=subprocess.PIPE)
            own: list[tuple[float, int | None, int | None]] = []
            behind: list[str] = []
            threading.Thread(target=progress_etas, args=(service, first, behind, own), daemon=True).start()
            time.sleep(1)
            told, ready = [], None
            for kind, data in queue_events(service, "big.bin"):
                if kind == "issued":
                    behind.append(data["token"])
                elif kind == "position":
                    told.append((time.monotonic(), data.get("eta_seconds")))
                elif kind == "ready":
                    ready = time.monotonic()
            got = int(reader.communicate()[0] or 0)
        finally:
            service.stop()
    print(f"\nBehind a bursty reader (curl --limit-rate {rate}, 100 MiB; {got} bytes, "
          f"{'right' if got == 100 << 20 else 'WRONG'} size; the waiter {'admitted' if ready else 'NEVER admitted'})")
    print(f"{'at (s)':>8}{'told (s)':>10}{'A /progress (s)':>17}{'real (s)':>10}")
    errors = []
    for at, eta in told:
        # what A's own page showed at about the same time (its last figure, counted down since)
        shown = [(t, e) for t, e, _ in own if t <= at + 0.5 and e is not None]
        page = round(shown[-1][1] - (at - shown[-1][0])) if shown else None
        real = (ready or at) - at
        if eta is not None:
            errors.append(abs(eta - real))
        print(f"{at - began:>8.1f}{eta if eta is not None else '-':>10}{page if page is not None else '-':>17}{real:>10.1f}")
    gaps = [abs(mine - queue) for _, mine, queue in own if mine is not None and queue is not None]
    print(f"told vs real: p50 {percentile(errors, 0.5):.1f} s, max {max(errors, default=0):.1f} s over {len(errors)} "
          f"figures; the queue's wait for B vs A's /progress at the same moment: p50 {percentile(gaps, 0.5):.0f} s, "
          f"max {max(gaps, default=0):.0f} s apart over {len(gaps)} ({len(own) - len(gaps)} more without both figures)")


if __name__ == "__main__":
    main()
