from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from app import create_app
from app.catalog.service import add_file
from app.config import load_config, normalize_database_url
from app.extensions import db
from app.runtime import runtime
from app.storage.files import Files
from testbed.servers import Gunicorn, LocalCluster, RedisProcess, SentinelGroup, self_signed

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-not-for-production"
OUTPUT = Path(os.environ.get("TEST_OUTPUT_DIR", Path(__file__).resolve().parent.parent / "test-output"))


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test database, migrated from empty once per run."""
    engine = sa.create_engine(normalize_database_url(DATABASE_URL))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    from flask_migrate import upgrade

    app = create_app(load_config(SECRET_KEY=SECRET, SQLALCHEMY_DATABASE_URI=normalize_database_url(DATABASE_URL)))
    with app.app_context():
        upgrade()
    return DATABASE_URL


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> dict[str, object]:
    """Config for one test: its own queue (key prefix), files folder and rate-limit keys."""
    files = tmp_path / "files"
    files.mkdir()
    name = f"t{uuid.uuid4().hex[:10]}"
    return {
        "APP_ENV": "test",
        "SECRET_KEY": SECRET,
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"limits-{name}",
        "FILES_ROOT": str(files),
        "QUEUE_NAME": name,
        "TESTING": True,
    }


def _clean_tables() -> None:
    db.session.execute(sa.text("TRUNCATE files, downloads, audit_log RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def app(settings):
    app = create_app(load_config(**settings))
    with app.app_context():
        _clean_tables()
    yield app
    runtime(app).stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_file(app):
    """Create a file of ``size`` random bytes under FILES_ROOT and register it."""

    def make(name: str = "data.bin", size: int = 1024, public: bool = True, display: str | None = None):
        path = Path(app.config["FILES_ROOT"]) / name
        path.write_bytes(os.urandom(size))
        with app.app_context():
            record = add_file(Files.from_config(app.config), name, display, public)
            return record.id, path

    return make


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def make_engine(redis_client):
    """``make_engine(capacity=1, ...)``: an engine on a queue of the test's own, dropped after it."""
    from .helpers.queue import drop, new_engine

    made = []

    def make(**settings):
        engine = new_engine(redis_client, **settings)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        drop(engine)


def server_env(settings: dict[str, object], **extra: object) -> dict[str, str]:
    """Environment variables for a gunicorn run with a test's settings."""
    env = {
        "APP_ENV": "test",
        "SECRET_KEY": SECRET,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": str(settings["REDIS_URL"]),
        "FILES_ROOT": str(settings["FILES_ROOT"]),
        "QUEUE_NAME": str(settings["QUEUE_NAME"]),
        "TOKEN_RATE_LIMIT": "100000/minute",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def gunicorn(settings, tmp_path):
    """Start the real service under gunicorn: ``gunicorn(QUEUE_CAPACITY=3, workers=2)``."""
    servers: list[Gunicorn] = []

    def start(workers: int = 2, **extra: object) -> Gunicorn:
        server = Gunicorn(server_env(settings, **extra), workers=workers,
                          log_path=tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of the test's own: ``redis_server(durable=True)``; stopped after the test."""
    servers: list[RedisProcess] = []

    def start(durable: bool = False) -> RedisProcess:
        server = RedisProcess(tmp_path / f"redis-{len(servers)}", durable=durable).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _running(server):
    """A server started for a module and stopped after it."""
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Redis Cluster of three primaries, once per module (tests/support.py)."""
    yield from _running(LocalCluster(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A Redis Cluster of three primaries with a replica each, TLS only (between the nodes too),
    once per module."""
    folder = tmp_path_factory.mktemp("tls-cluster")
    yield from _running(LocalCluster(folder, tls=self_signed(folder / "tls"), replicas=1))


@pytest.fixture(scope="module", params=["plain", "tls"])
def sentinel(request, tmp_path_factory):
    """A primary, a replica and three Sentinels, once per module, plain and TLS only (between
    them too: ``rediss+sentinel://``)."""
    folder = tmp_path_factory.mktemp("sentinel")
    tls = self_signed(folder / "tls") if request.param == "tls" else None
    yield from _running(SentinelGroup(folder, tls=tls))
