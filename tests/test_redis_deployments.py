"""Issue 10: the Redis that users deploy — how it is named, TLS (`rediss://`, Heroku's self-signed
certificates), and what health means. Sentinel and Cluster have modules of their own."""
from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import requests

from app import create_app
from app.config import ConfigError, load_config
from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.queue.states import TokenState
from app.runtime import runtime
from testbed.servers import RedisProcess, self_signed

from .helpers.http import download_sha, new_token, wait_turn


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A redis-server that speaks only TLS, with a self-signed certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder)
    server = RedisProcess(folder / "redis", tls=(cert, key)).start()
    yield server, cert
    server.stop()


@pytest.mark.parametrize("verify", ["none", "ca"])
def test_the_whole_flow_over_tls(tls_redis, gunicorn, make_file, verify):
    """Heroku's case (REDIS_TLS_VERIFY=none) and a private CA (REDIS_TLS_CA): queue, hub, history
    and rate limits all reach the TLS-only server."""
    server_redis, cert = tls_redis
    file_id, path = make_file("f.bin", size=2 << 20)
    tls = {"REDIS_TLS_VERIFY": "none"} if verify == "none" else {"REDIS_TLS_CA": str(cert)}
    server = gunicorn(workers=2, QUEUE_CAPACITY=1, REDIS_URL=server_redis.url, **tls)
    assert requests.get(f"{server.url}/healthz", timeout=5).json()["checks"]["redis"] == "ok"
    first, second = new_token(server.url, file_id), new_token(server.url, file_id)  # rate limits on TLS
    assert wait_turn(server.url, first)[1].event == "ready"
    assert requests.post(f"{server.url}/api/v1/queue/{second}", timeout=5).json()["state"] == "waiting"
    status, digest, _ = download_sha(server.url, first)
    assert (status, digest) == (200, hashlib.sha256(path.read_bytes()).hexdigest())
    # the completion frees the slot: the hub's subscription over TLS hears it
    assert wait_turn(server.url, second)[1].event == "ready"


def test_an_unverifiable_certificate_is_refused_not_trusted(tls_redis, settings):
    server_redis, _ = tls_redis
    app = create_app(load_config(**{**settings, "REDIS_URL": server_redis.url,
                                    "RATELIMIT_STORAGE_URI": server_redis.url}))  # verify, system CAs only
    try:
        health = app.test_client().get("/healthz")
        assert health.status_code == 503 and health.json["error"]["checks"]["redis"].startswith("error")
    finally:
        runtime(app).stop()
    with pytest.raises(ConfigError, match="REDIS_TLS_CA"):
        load_config({"APP_ENV": "test", "REDIS_URL": server_redis.url, "REDIS_TLS_CA": "/no/such/ca.pem"})


def test_health_means_the_queue_answers_not_merely_a_ping(app, client, redis_client):
    assert client.get("/healthz").status_code == 200
    keys = runtime(app).engine.keys
    redis_client.set(keys.waiting, "not a sorted set")  # Redis answers PING; the queue cannot work
    try:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json["error"]["checks"]["redis"].startswith("error")
        assert redis_client.ping()
    finally:
        redis_client.delete(keys.waiting)
    assert client.get("/healthz").status_code == 200


def test_a_write_no_replica_confirms_is_served_and_counted(redis_client):
    """WAIT on a server without replicas: the join is answered after the timeout, counted; reads
    never wait."""
    engine = QueueEngine(redis_client, f"w{uuid.uuid4().hex[:8]}", QueueSettings(capacity=1),
                         replicas=1, replica_timeout=0.05)
    snap = engine.join("a" * 16, 1, 10, time.time() + 60)
    assert snap.state == TokenState.ADMITTED and engine.unreplicated == 1
    redis_client.script_flush()  # a restarted primary knows no script: loaded, then run once
    assert engine.join("b" * 16, 1, 10, time.time() + 60).position == 1
    engine.status(["a" * 16, "b" * 16])
    assert engine.unreplicated == 2
