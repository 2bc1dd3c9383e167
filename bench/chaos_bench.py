"""Chaos over two hosts: many clients, a worker killed mid-download, Redis killed and restarted.

Two gunicorn hosts (2 gevent workers each, the defaults a user gets) share one durable
redis-server (append-only, fsync always: the deployment this promise is made for) and one
PostgreSQL database. --clients clients (gevent client processes) each take a token from a random
host, wait over SSE (reconnecting as EventSource does), download with resume (one in five is
cut off at a random point and resumes), and check the bytes. One in ten leaves the line, one in
ten closes its stream and comes back 5-60 s later (away), one in twenty never downloads its
turn.
Meanwhile a worker serving a download is killed with SIGKILL and Redis is killed and restarted
2 s later (--worker-at, --redis-at; --seed varies every client's choices).

Prints what was lost: over-admissions (the server's own active count in every event, and
overlaps in the history), slots still held at the end, FIFO inversions (history: joined earlier,
admitted later), wrong outcomes in the history (a completed download without a ``completed``
row, a turn never used without ``no_show``), clients unfinished at the end, refused resumes
(410 before the client had every byte), wrong bytes, and 5xx other than the documented 503s.

    python bench/chaos_bench.py [--clients 1000] [--seed 0] [--worker-at 8] [--redis-at 16]
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import random
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from harness import BENCH_DATABASE_URL, Gunicorn, RedisProcess, fresh_database, make_file

SECRET = "bench-secret"
CAPACITY = 4


def client_process(hosts: list[str], files: dict[int, tuple[int, str]], count: int, seed: int, report) -> None:
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import requests
    from gevent.pool import Pool

    rng = random.Random(seed)
    results = Counter()

    def sse_until_ready(host: str, token: str) -> str:
        for _ in range(60):
            try:
                with requests.get(f"{host}/api/v1/queue/{token}", stream=True, timeout=120) as r:
                    if r.status_code >= 500:
                        results[f"sse_{r.status_code}"] += 1
                        gevent.sleep(1)
                        continue
                    event = None
                    for line in r.iter_lines(decode_unicode=True):
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                        elif line.startswith("data:") and event in ("ready", "error"):
                            if event == "ready":
                                return "ready"
                            code = json.loads(line[5:])["error"]["code"]
                            if code in ("unavailable",):
                                break
                            return code
            except requests.RequestException:
                pass
            gevent.sleep(0.5 + rng.random())  # reconnect, as EventSource does
        return "gave_up"

    def download(host: str, token: str, size: int, digest: str) -> None:
        have = bytearray()
        cut = rng.random() < 0.2
        for _ in range(200):
            headers = {"Range": f"bytes={len(have)}-"} if have else {}
            try:
                with requests.get(f"{host}/api/v1/downloads/{token}", headers=headers, stream=True, timeout=60) as r:
                    if r.status_code == 410:
                        results["refused_resume" if len(have) < size else "done_410"] += 1
                        break
                    if r.status_code >= 500:
                        results["503" if r.status_code == 503 else f"http_{r.status_code}"] += 1
                        gevent.sleep(1)
                        continue
                    if r.status_code not in (200, 206):
                        results[f"download_{r.status_code}"] += 1
                        gevent.sleep(1)
                        continue
                    stop_at = rng.randrange(1, size) if cut else None
                    for chunk in r.iter_content(256 << 10):
                        have += chunk
                        if stop_at is not None and len(have) >= stop_at:
                            cut = False
                            break
            except requests.RequestException:
                gevent.sleep(0.2)
            if len(have) >= size:
                break
        if len(have) == size and hashlib.sha256(have).hexdigest() == digest:
            results["completed"] += 1
            report.send(("completed", token))
        else:
            results["wrong_or_incomplete_bytes"] += 1

    def first_event(host: str, token: str) -> None:
        """Open the stream, hear the place, close it (a phone put in a pocket)."""
        try:
            with requests.get(f"{host}/api/v1/queue/{token}", stream=True, timeout=60) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:"):
                        return
        except requests.RequestException:
            pass

    def one(n: int) -> None:
        host = rng.choice(hosts)
        file_id = rng.choice(list(files))
        size, digest = files[file_id]
        kind = rng.choices(("leaves", "away", "no_show", "downloads"), (10, 10, 5, 75))[0]
        try:
            r = requests.post(f"{host}/api/v1/files/{file_id}/tokens", timeout=30)
        except requests.RequestException:
            results["token_error"] += 1
            return
        if r.status_code != 201:
            results[f"token_{r.status_code}"] += 1
            return
        token = r.json()["token"]
        if kind in ("leaves", "away"):
            if kind == "away":
                report.send(("away", token))  # others may go first meanwhile: not an inversion
            first_event(rng.choice(hosts), token)
            gevent.sleep(rng.uniform(0, 5) if kind == "leaves" else rng.uniform(5, 60))
        if kind == "leaves":
            for _ in range(30):
                try:
                    if requests.delete(f"{rng.choice(hosts)}/api/v1/queue/{token}", timeout=30).status_code < 500:
                        break
                except requests.RequestException:
                    pass
                gevent.sleep(1)
            results["left"] += 1
            return
        outcome = sse_until_ready(rng.choice(hosts), token)
        if outcome != "ready":
            results[f"wait_{outcome}"] += 1
            return
        if kind == "no_show":
            report.send(("no_show", token))
            results["no_show"] += 1
            return
        download(rng.choice(hosts), token, size, digest)

    def counted(n: int) -> None:
        try:
            one(n)
        finally:
            report.send(("finished", n))

    pool = Pool(count)
    for n in range(count):
        pool.spawn(counted, n)
        gevent.sleep(0.01)
    pool.join()
    report.send(("done", dict(results)))


def monitor(url: str, channel: str, seen: dict, stop: threading.Event) -> None:
    import redis

    while not stop.is_set():
        try:
            pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel)
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message:
                    seen["max_active"] = max(seen["max_active"], json.loads(message["data"])["active"])
        except redis.RedisError:
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker-at", type=float, default=8.0)
    parser.add_argument("--redis-at", type=float, default=16.0)
    args = parser.parse_args()

    import os
    import sys

    import redis
    import sqlalchemy as sa

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "files"
        folder.mkdir()
        for name, size in (("a.bin", 1 << 20), ("b.bin", 4 << 20), ("c.bin", 16 << 20)):
            make_file(folder, name, size)
        server = RedisProcess(tmp_path / "redis", durable=True).start()
        database = fresh_database(BENCH_DATABASE_URL)
        # every client comes from 127.0.0.1, one address standing for many people: no per-address limits
        env = {"APP_ENV": "local", "SECRET_KEY": SECRET, "DATABASE_URL": database, "REDIS_URL": server.url,
               "FILES_ROOT": str(folder), "TOKEN_RATE_LIMIT": "1000000/minute", "MAX_PLACES_PER_CLIENT": "0",
               "QUEUE_NAME": "chaos",
               # a turn never used frees its slot after 15 s, not the default 60: fifty of them
               # would otherwise keep the run going for twelve minutes
               "ADMIT_TIMEOUT": "15",
               "QUEUE_CAPACITY": str(CAPACITY)}
        full_env = {**os.environ, **env}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=root, env=full_env,
                       check=True, capture_output=True)
        files: dict[int, tuple[int, str]] = {}
        for path in sorted(folder.iterdir()):
            out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "files", "add", path.name,
                                  "--public"], cwd=root, env=full_env, capture_output=True, text=True, check=True)
            files[int(out.stdout.strip().splitlines()[-1])] = (path.stat().st_size,
                                                                hashlib.sha256(path.read_bytes()).hexdigest())
        hosts = [Gunicorn(env, workers=2, log_path=tmp_path / f"host{n}.log").start() for n in range(2)]
        seen = {"max_active": 0}
        stop = threading.Event()
        watcher = threading.Thread(target=monitor, args=(server.url, "{dq:chaos}:events:0", seen, stop), daemon=True)
        watcher.start()
        ctx = multiprocessing.get_context("spawn")
        readers, procs = [], []
        per = args.clients // args.client_procs
        began = time.time()
        for n in range(args.client_procs):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=client_process, args=([h.url for h in hosts], files, per,
                                                                   args.seed * 1000 + n, writer))
            proc.start()
            readers.append(reader)
            procs.append(proc)
        completed, no_shows, away, results, killed, finished = [], [], [], Counter(), [], 0
        faults = {"worker": began + args.worker_at, "redis": began + args.redis_at}
        from multiprocessing.connection import wait

        while readers and time.time() - began < 1200:
            now = time.time()
            if "worker" in faults and now >= faults["worker"]:
                victims = hosts[0].serving()
                if victims:
                    victim = sorted(victims)[0]
                    subprocess.run(["kill", "-9", str(victim)], check=False)
                    killed.append(victim)
                    del faults["worker"]
            if "redis" in faults and now >= faults["redis"]:
                server.stop()
                time.sleep(2)
                server.start()
                del faults["redis"]
            for reader in wait(readers, timeout=0.2):
                kind, value = reader.recv()
                if kind == "completed":
                    completed.append(value)
                elif kind == "no_show":
                    no_shows.append(value)
                elif kind == "away":
                    away.append(value)
                elif kind == "finished":
                    finished += 1
                else:
                    results.update(value)
                    readers.remove(reader)
        elapsed = time.time() - began
        client = redis.Redis.from_url(server.url)
        from app.queue.engine import QueueEngine
        from app.queue.settings import QueueSettings
        from app.services.tokens import verify_token

        engine = QueueEngine(client, "chaos", QueueSettings(capacity=CAPACITY))
        deadline = time.time() + 30  # a turn never used holds its slot for ADMIT_TIMEOUT
        while engine.reap().active and time.time() < deadline:
            time.sleep(0.5)
        leaked = engine.summary().active
        for token_id, lease in client.zrange(engine.keys.key("active"), 0, -1, withscores=True):
            info = client.hget(engine.keys.key("info"), token_id)
            print("still held:", token_id.decode(), f"lease in {lease / 1000 - time.time():.0f} s", info)
        ids = {verify_token(SECRET, t).token_id for t in completed}
        unused = {verify_token(SECRET, t).token_id for t in no_shows}
        went_away = {verify_token(SECRET, t).token_id for t in away}
        engine_db = sa.create_engine(database)
        deadline = time.time() + 30
        while True:
            with engine_db.connect() as conn:
                rows = conn.execute(sa.text("SELECT token_id, outcome, joined_at, admitted_at, finished_at, "
                                        "bytes_sent, bytes_resent, file_id "
                                            "FROM downloads")).mappings().all()
            recorded = {r["token_id"]: r["outcome"] for r in rows}
            missing = [t for t in ids if recorded.get(t) != "completed"]
            wrong_unused = [t for t in unused if recorded.get(t) != "no_show"]
            if not (missing or wrong_unused) or time.time() > deadline:
                break
            time.sleep(1)
        admitted = sorted((r["admitted_at"], r["joined_at"]) for r in rows
                          if r["admitted_at"] and r["joined_at"] and r["token_id"] not in went_away)
        sizes = {file_id: size for file_id, (size, _) in files.items()}
        overcounted = sum(1 for r in rows if r["bytes_sent"] - r["bytes_resent"] > sizes.get(r["file_id"], 0))
        inversions = sum(1 for (_, j1), (_, j2) in itertools.pairwise(admitted) if j2 < j1)
        spans = [(r["admitted_at"], r["finished_at"]) for r in rows if r["admitted_at"] and r["finished_at"]]
        overlap = max((sum(1 for a, f in spans if a <= start < f) for start, _ in spans), default=0)
        stop.set()
        for proc in procs:
            proc.kill()
        for host in hosts:
            host.stop()
        server.stop()
        five = sum(v for k, v in results.items() if k.startswith(("http_5", "token_5", "sse_5")) and "503" not in k)
        log_errors = sum(p.read_text().count("Error handling request") for p in tmp_path.glob("host*.log"))

    print(f"\nChaos (seed {args.seed}): {args.clients} clients over 2 hosts x 2 gevent workers, capacity {CAPACITY}, "
          f"worker killed at {args.worker_at:.0f} s ({len(killed)}), Redis killed at {args.redis_at:.0f} s and "
          f"restarted after 2 s; {elapsed:.0f} s")
    table = [
        ("downloads completed with the right bytes", len(completed)),
        ("over-admissions (max active seen in events - capacity)", max(0, seen["max_active"] - CAPACITY)),
        ("over-admissions (history overlap - capacity)", max(0, overlap - CAPACITY)),
        ("slots still held at the end", leaked),
        ("FIFO inversions (history; not counting those who went away)", inversions),
        ("history rows with more distinct bytes than the file", overcounted),
        ("completed downloads without a 'completed' row", len(missing)),
        ("turns never used without a 'no_show' row", len(wrong_unused)),
        ("clients unfinished at the end", per * args.client_procs - finished),
        ("refused resumes (410 before every byte)", results.get("refused_resume", 0)),
        ("wrong or incomplete bytes", results.get("wrong_or_incomplete_bytes", 0)),
        ("5xx other than 503", five),
        ("documented 503s met (and retried)", results.get("503", 0)),
        ("'Error handling request' in the hosts' logs", log_errors),
    ]
    for name, value in table:
        print(f"{name:<60}{value:>10}")
    print("client outcomes:", dict(results))


if __name__ == "__main__":
    main()
