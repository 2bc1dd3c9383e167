"""Starting the real service (gunicorn + private Redis + SQLite) and nginx for benchmarks."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.servers import Gunicorn, Nginx, RedisProcess, SeaweedS3, cpu_seconds, process_tree  # noqa: E402,F401  (re-exported)


def make_file(folder: Path, name: str, size: int) -> Path:
    """A file of ``size`` random-ish bytes (written in 64 MiB blocks), left in the page cache."""
    path = folder / name
    if not path.exists() or path.stat().st_size != size:
        path.touch(mode=0o644)
        block = os.urandom(64 << 20)
        with path.open("wb") as fh:
            left = size
            while left:
                fh.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    with path.open("rb") as fh:  # warm the page cache
        while fh.read(64 << 20):
            pass
    return path


BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/bench")


def fresh_database(url: str) -> str:
    """Drop and re-create the benchmark's own PostgreSQL database (never the test one)."""
    import sqlalchemy as sa

    from app.config import normalize_database_url

    url = normalize_database_url(url)
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


class Service:
    """Our service under gunicorn with its own redis-server, on PostgreSQL as in production."""

    def __init__(self, workdir: Path, files: Path, workers: int = 2, locations: list[str] | None = None,
                 database_url: str = BENCH_DATABASE_URL, **settings: object) -> None:
        """Registers every file under ``files``, or the store's ``locations`` (s3://...) instead."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisProcess(workdir / "redis").start()
        self.env = {
            "APP_ENV": "local",
            "SECRET_KEY": "bench-secret",
            "DATABASE_URL": fresh_database(database_url),
            "REDIS_URL": self.redis.url,
            "FILES_ROOT": str(files),
            # every benchmark client comes from 127.0.0.1, one address standing for many people
            "TOKEN_RATE_LIMIT": "1000000/minute",
            "MAX_PLACES_PER_CLIENT": "0",
            "QUEUE_NAME": "bench",
            **{k: str(v) for k, v in settings.items()},
        }
        env = {**os.environ, **self.env}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        self.file_ids: dict[str, int] = {}
        for location in locations or [path.name for path in sorted(files.iterdir())]:
            out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "files", "add", location,
                                  "--public"], cwd=ROOT, env=env, capture_output=True, text=True)
            if out.returncode == 0:
                self.file_ids[location.rsplit("/", 1)[-1]] = int(out.stdout.strip().splitlines()[-1])
        self.server = Gunicorn(self.env, workers=workers, log_path=workdir / "gunicorn.log").start()
        self.url = self.server.url

    def admitted_token(self, name: str) -> str:
        token = requests.post(f"{self.url}/api/v1/files/{self.file_ids[name]}/tokens", timeout=10).json()["token"]
        state = requests.post(f"{self.url}/api/v1/queue/{token}", timeout=10).json()["state"]
        assert state == "ready", state
        return token

    def engine(self):
        """A queue engine on the service's Redis with the service's own settings."""
        import redis

        from app.config import load_config
        from app.queue.engine import QueueEngine
        from app.queue.settings import QueueSettings

        config = vars(load_config(self.env))
        return QueueEngine(redis.Redis.from_url(self.redis.url), config["QUEUE_NAME"],
                           QueueSettings.from_config(config))

    def worker_rss_kib(self) -> int:
        total = 0
        for pid in self.server.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def stop(self) -> None:
        self.server.stop()
        self.redis.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def curl_many(urls: list[str], ranged_from: int | None = None) -> tuple[float, int]:
    """Download every URL at once with curl; returns (seconds, total bytes)."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}\\n"]
    if ranged_from is not None:
        cmd += ["-r", f"{ranged_from}-"]
    began = time.perf_counter()
    procs = [subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, text=True) for url in urls]
    sizes = [int(p.communicate()[0].strip() or 0) for p in procs]
    return time.perf_counter() - began, sum(sizes)


def sse_events(url: str, timeout: float = 900):
    """Follow an event stream: yields (event, data) pairs until the server ends it (or the
    caller stops)."""
    import json

    with requests.get(url, stream=True, timeout=timeout) as stream:
        kind = None
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind:
                yield kind, json.loads(line[5:])


def queue_events(service: Service, file_name: str, timeout: float = 900):
    """Issue a token for the file and follow its queue over SSE: yields (event, data) pairs
    (``position``, then ``ready`` or ``error``), the first (``issued``, the token's JSON) once
    the token is issued, just before the stream opens."""
    issued = requests.post(f"{service.url}/api/v1/files/{service.file_ids[file_name]}/tokens", timeout=30).json()
    yield "issued", issued
    for kind, data in sse_events(service.url + issued["queue_url"], timeout):
        yield kind, data
        if kind in ("ready", "error"):
            return
