"""Configuration read once from the environment (12-factor).

Every setting the service understands is named here, parsed explicitly and given a
default that is safe for a local run. ``load_config`` refuses to start a production
process that lacks a real ``SECRET_KEY``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from limits import parse_many

from .queue.constants import BOUNDS, Bound
from .queue.redis_url import parse_redis_url
from .storage.locations import has_credentials, parse_url

LOCAL_ENVS = frozenset({"local", "development", "test"})
DEV_SECRET = "dev-only-secret-do-not-use-in-production"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
MAX_SECONDS = 10**9  # ~31 years: the longest token lifetime
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up, never per request."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def _setting(env: Mapping[str, str], bound: Bound) -> int | float:
    """One of the queue's rules, within the bounds the scripts enforce (seconds for durations)."""
    raw = env.get(bound.env)
    if raw is None or raw.strip() == "":
        return bound.default
    try:
        value: int | float = float(raw) if bound.seconds else int(raw)
    except ValueError as exc:
        kind = "a number of seconds" if bound.seconds else "an integer"
        raise ConfigError(f"{bound.env} must be {kind}, got {raw!r}") from exc
    if bound.seconds and value.is_integer():
        value = int(value)
    problem = bound.check(value)
    if problem is not None:
        raise ConfigError(f"{bound.env}: {problem.removeprefix(bound.name + ' ')}, got {raw.strip()}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in TRUE_WORDS | FALSE_WORDS:
        return raw in TRUE_WORDS
    raise ConfigError(f"{name} must be one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(env: Mapping[str, str], name: str, default: str) -> int:
    """Bytes, as a count or with a binary unit: ``0``, ``500M``, ``4G``."""
    raw = env.get(name, default).strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in SIZE_UNITS else ""
    try:
        value = int(raw[: len(raw) - len(unit)]) * SIZE_UNITS[unit]
    except ValueError as exc:
        raise ConfigError(f"{name} must be a size in bytes such as 0, 500M or 4G, got {env.get(name)!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {env.get(name)!r}")
    return value


def check_files_url(url: str, x_accel: str | None, env: Mapping[str, str]) -> None:
    """A remote store needs a well-formed URL and credentials the S3 client can find."""
    if not url:
        return
    if not url.startswith("s3://"):
        raise ConfigError(f"FILES_URL must be s3://bucket/prefix (or unset for files under FILES_ROOT), got {url!r}")
    try:
        parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"FILES_URL: {exc}") from exc
    if not has_credentials(env):
        raise ConfigError(f"FILES_URL is {url} but no S3 credentials were found; set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for a store other than Amazon S3)")
    if x_accel:
        raise ConfigError("X_ACCEL_REDIRECT hands nginx a local path; it cannot serve files from FILES_URL")


def redis_options(url: str, verify: str, ca: str | None) -> dict[str, object]:
    """Client options every Redis connection of the service shares (queue, hub, rate limits)."""
    try:
        target = parse_redis_url(url)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from exc
    if not target.tls:
        return {}
    if ca is not None and not Path(ca).is_file():
        raise ConfigError(f"REDIS_TLS_CA must name a readable certificate file, got {ca!r}")
    if verify == "none":
        return {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
    return {"ssl_cert_reqs": "required", **({"ssl_ca_certs": ca} if ca else {})}


def limiter_storage(url: str, options: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The rate limits' storage URI and options. Behind Sentinel they read the primary too
    (``limits`` reads replicas by default, and a lagging or frozen replica would then decide);
    ``limits`` has no ``rediss+`` schemes: TLS to Sentinel or a cluster is its ``ssl`` option."""
    target = parse_redis_url(url) if url.startswith(("redis", "valkey")) else None
    if target is None or target.kind == "server":
        return url, options
    extra: dict[str, object] = {"ssl": True} if target.tls else {}
    if target.kind == "sentinel":
        extra.update(use_replicas=False, sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2,
                                                          **({"ssl": True, **options} if target.tls else {})})
    return url.replace("rediss+", "redis+", 1), {**options, **extra}


def wait_replicas(url: str, raw: int | str) -> int:
    """``REDIS_WAIT_REPLICAS``: a count, or ``auto`` (1 behind Sentinel, 0 elsewhere)."""
    if str(raw) == "auto":
        return 1 if parse_redis_url(url).kind == "sentinel" else 0
    if not str(raw).isdigit() or int(raw) > 16:
        raise ConfigError(f"REDIS_WAIT_REPLICAS must be auto or a count from 0 to 16, got {raw!r}")
    return int(raw)


def normalize_database_url(url: str) -> str:
    """Make ``postgres://`` and ``postgresql://`` use psycopg2 (SQLAlchemy 2.1 picks psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


class Config:
    """Settings for a deployed process; class attributes are computed at import of the env."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._env = env  # the S3 client's own variables are checked, not copied
        self.APP_ENV = env.get("APP_ENV", "production").strip().lower()
        self.SECRET_KEY = env.get("SECRET_KEY") or (
            DEV_SECRET if self.APP_ENV in LOCAL_ENVS else None
        )
        # old keys still accepted for tokens (and Flask's sessions) during a rotation, oldest first
        self.SECRET_KEY_FALLBACKS = [k.strip() for k in env.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()]
        instance = Path(env.get("INSTANCE_DIR", Path.cwd() / "instance")).resolve()
        self.INSTANCE_DIR = str(instance)
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{instance / 'download-queue.sqlite3'}"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.REDIS_URL = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.REDIS_MAX_CONNECTIONS = _int(env, "REDIS_MAX_CONNECTIONS", 64, minimum=4)
        self.FILES_ROOT = str(Path(env.get("FILES_ROOT", instance / "files")).resolve())
        # s3://bucket/prefix: files in object storage (endpoint, region and credentials from the S3
        # client's own AWS_* variables); unset: files under FILES_ROOT
        self.FILES_URL = env.get("FILES_URL", "").strip()
        self.AWS_REGION = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        # a remote store's objects cached on this host's disk, least recently used evicted; 0: off
        self.FILES_CACHE_DIR = str(Path(env.get("FILES_CACHE_DIR", instance / "file-cache")).resolve())
        self.FILES_CACHE_BYTES = _size(env, "FILES_CACHE_BYTES", "4G")
        self.ISSUER_API_KEY = env.get("ISSUER_API_KEY") or None
        self.TOKEN_TTL = _int(env, "TOKEN_TTL", 3600, minimum=1, maximum=MAX_SECONDS)
        self.TOKEN_RATE_LIMIT = env.get("TOKEN_RATE_LIMIT", "60/minute")
        self.TRUSTED_PROXY_COUNT = _int(env, "TRUSTED_PROXY_COUNT", 0)
        self.HOST = env.get("HOST", "0.0.0.0")
        self.PORT = _int(env, "PORT", 8000, minimum=1)
        self.WEB_CONCURRENCY = _int(env, "WEB_CONCURRENCY", 2, minimum=1)
        self.WORKER_CONNECTIONS = _int(env, "WORKER_CONNECTIONS", 20_000, minimum=1)
        self.GRACEFUL_TIMEOUT = _int(env, "GRACEFUL_TIMEOUT", 30, minimum=1)
        self.LOG_LEVEL = _choice(env, "LOG_LEVEL", "info", LOG_LEVELS)
        self.LOG_FORMAT = _choice(
            env, "LOG_FORMAT", "text" if self.APP_ENV in LOCAL_ENVS else "json", ("json", "text")
        )
        self.ACCESS_LOG = _bool(env, "ACCESS_LOG", True)
        self.METRICS_TOKEN = env.get("METRICS_TOKEN") or None
        self.ADMIN_API_KEY = env.get("ADMIN_API_KEY") or None
        self.QUEUE_NAME = env.get("QUEUE_NAME", "default")
        # the queue's rules (QUEUE_CAPACITY, ADMIT_TIMEOUT, ..., EGRESS_BUDGET, MIN_RATE): they seed a
        # queue that has none; the bounds are the scripts' own (app/queue/constants.py)
        for bound in BOUNDS:
            setattr(self, bound.env, _setting(env, bound))
        self.BANDWIDTH_LIMIT = _int(env, "BANDWIDTH_LIMIT", 0)
        self.X_ACCEL_REDIRECT = env.get("X_ACCEL_REDIRECT") or None
        # rediss:// (TLS): verify the server's certificate against REDIS_TLS_CA (or the system's
        # CAs), or not at all (REDIS_TLS_VERIFY=none: Heroku Key-Value Store's self-signed ones)
        self.REDIS_TLS_VERIFY = _choice(env, "REDIS_TLS_VERIFY", "required", ("required", "none"))
        self.REDIS_TLS_CA = env.get("REDIS_TLS_CA") or None
        self.REDIS_OPTIONS: dict[str, object] = {}  # worked out by validate(), after any override
        # durable queue writes wait for this many replicas to confirm them (Redis WAIT); "auto":
        # one behind Sentinel (a failover must not undo what clients were told), none elsewhere
        self.REDIS_WAIT_REPLICAS = env.get("REDIS_WAIT_REPLICAS", "auto").strip().lower() or "auto"
        self.REDIS_WAIT_TIMEOUT = _int(env, "REDIS_WAIT_TIMEOUT", 100, minimum=1, maximum=10_000)  # ms
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL
        self.RATELIMIT_STORAGE_OPTIONS: dict[str, object] = {}
        self.RATELIMIT_KEY_PREFIX = "dq-limits"
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.TESTING = self.APP_ENV == "test"

    def validate(self) -> None:
        """Fail start-up loudly instead of running with an unsafe or broken setting; work out the
        settings derived from others (after any override)."""
        if not self.SECRET_KEY:
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random string "
                "(or APP_ENV=local for a development run)."
            )
        if self.APP_ENV not in LOCAL_ENVS and self.SECRET_KEY == DEV_SECRET:
            raise ConfigError("SECRET_KEY is the development placeholder; set a real one.")
        if self.PORT > 65535:
            raise ConfigError(f"PORT must be a TCP port (1-65535), got {self.PORT}")
        try:
            parse_many(self.TOKEN_RATE_LIMIT)
        except ValueError as exc:
            raise ConfigError(
                f"TOKEN_RATE_LIMIT must be a rate limit such as '60/minute', got {self.TOKEN_RATE_LIMIT!r}"
            ) from exc
        check_files_url(self.FILES_URL, self.X_ACCEL_REDIRECT, self._env)
        self.REDIS_OPTIONS = redis_options(self.REDIS_URL, self.REDIS_TLS_VERIFY, self.REDIS_TLS_CA)
        self.RATELIMIT_STORAGE_URI, self.RATELIMIT_STORAGE_OPTIONS = limiter_storage(
            self.RATELIMIT_STORAGE_URI, self.REDIS_OPTIONS)
        self.REDIS_WAIT_REPLICAS = wait_replicas(self.REDIS_URL, self.REDIS_WAIT_REPLICAS)
        for bound in BOUNDS:
            problem = bound.check(getattr(self, bound.env))
            if problem is not None:
                raise ConfigError(f"{bound.env}: {problem.removeprefix(bound.name + ' ')}")


def load_config(environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
    """Read the environment (or ``environ``), apply explicit overrides (tests), and validate."""
    config = Config(environ)
    for key, value in overrides.items():
        setattr(config, key, value)
    config.validate()
    return config
