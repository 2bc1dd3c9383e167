"""Configuration read once from the environment: defaults, bounds, clear errors."""
from __future__ import annotations

import pytest

from app.config import ConfigError, load_config, normalize_database_url
from app.queue.constants import BOUNDS
from app.queue.settings import QueueSettings


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:6379", "scheme must be one of"),
    ("redis+sentinel://127.0.0.1:26379", "names the service"),
    ("redis+cluster://127.0.0.1:7000/2", "database 0 only"),
    ("redis://a:1,b:2/0", "one server per redis://"),
    ("redis+cluster://127.0.0.1:port", "bad host:port"),
])
def test_a_bad_redis_url_stops_start_up_with_what_is_wrong(url, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"APP_ENV": "test", "REDIS_URL": url})


def test_durable_writes_wait_for_a_replica_behind_sentinel_only_by_default():
    sentinel = load_config({"APP_ENV": "test", "REDIS_URL": "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/q"})
    assert sentinel.REDIS_WAIT_REPLICAS == 1
    assert sentinel.RATELIMIT_STORAGE_OPTIONS["use_replicas"] is False  # limits read the primary
    assert load_config({"APP_ENV": "test"}).REDIS_WAIT_REPLICAS == 0
    assert load_config({"APP_ENV": "test", "REDIS_WAIT_REPLICAS": "2"}).REDIS_WAIT_REPLICAS == 2
    with pytest.raises(ConfigError, match="REDIS_WAIT_REPLICAS"):
        load_config({"APP_ENV": "test", "REDIS_WAIT_REPLICAS": "many"})


def test_sqlite_is_the_local_default(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("APP_ENV", "local")
    config = load_config()
    assert f"sqlite:///{tmp_path}/download-queue.sqlite3" == config.SQLALCHEMY_DATABASE_URI


def test_bad_integer_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("QUEUE_CAPACITY", "many")
    with pytest.raises(ConfigError, match="QUEUE_CAPACITY must be an integer"):
        load_config(SECRET_KEY="x")



@pytest.mark.parametrize("given", [
    "postgres://u:p@h:5432/d", "postgresql://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d",
])
def test_database_urls_use_psycopg2(given):
    assert normalize_database_url(given) == "postgresql+psycopg2://u:p@h:5432/d"


def test_the_queue_rules_take_the_scripts_bounds():
    config = load_config({"APP_ENV": "test"})
    assert QueueSettings.from_config(vars(config)) == QueueSettings()
    assert load_config({"APP_ENV": "test", "ADMIT_TIMEOUT": "0.5"}).ADMIT_TIMEOUT == 0.5
    for bound in BOUNDS:
        with pytest.raises(ConfigError, match=bound.env):
            load_config({"APP_ENV": "test", bound.env: str(bound.high * 10)})
        with pytest.raises(ConfigError, match=bound.env):
            load_config({"APP_ENV": "test", bound.env: "x"})
    with pytest.raises(ConfigError, match="WAIT_GRACE"):
        load_config({"APP_ENV": "test"}, WAIT_GRACE=0)


def test_tls_to_sentinel_and_cluster_is_named_by_rediss():
    """Issue 21: ``rediss+sentinel://`` and ``rediss+cluster://`` carry the REDIS_TLS_* settings to
    every Sentinel and node; the rate limits (``limits`` has no such schemes) get them as options."""
    ca = __file__  # any readable file stands for the CA here
    sentinel = load_config({"APP_ENV": "test", "REDIS_URL": "rediss+sentinel://10.0.0.1,10.0.0.2:26380/q",
                            "REDIS_TLS_CA": ca})
    assert {"ssl_cert_reqs": "required", "ssl_ca_certs": ca} == sentinel.REDIS_OPTIONS
    assert sentinel.RATELIMIT_STORAGE_URI == "redis+sentinel://10.0.0.1,10.0.0.2:26380/q"
    options = sentinel.RATELIMIT_STORAGE_OPTIONS
    assert options["ssl"] is True and options["sentinel_kwargs"]["ssl"] is True
    assert options["sentinel_kwargs"]["ssl_ca_certs"] == ca and options["use_replicas"] is False
    cluster = load_config({"APP_ENV": "test", "REDIS_URL": "rediss+cluster://10.0.0.1:7000",
                           "REDIS_TLS_VERIFY": "none"})
    assert cluster.RATELIMIT_STORAGE_URI == "redis+cluster://10.0.0.1:7000"
    assert cluster.RATELIMIT_STORAGE_OPTIONS == {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    plain = load_config({"APP_ENV": "test", "REDIS_URL": "redis+cluster://10.0.0.1:7000"})
    assert plain.REDIS_OPTIONS == {} and "ssl" not in plain.RATELIMIT_STORAGE_OPTIONS
    with pytest.raises(ConfigError, match="rediss\\+sentinel://host:port"):
        load_config({"APP_ENV": "test", "REDIS_URL": "rediss+sentinel://10.0.0.1"})
