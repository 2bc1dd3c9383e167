"""Configuration read once from the environment (12-factor).

Every setting the service understands is named here, parsed explicitly and given a
default that is safe for a local run. ``load_config`` refuses to start a production
process that lacks a real ``SECRET_KEY``.
"""
from __future__ import annotations

import os
from pathlib import Path

LOCAL_ENVS = frozenset({"local", "development", "test"})
DEV_SECRET = "dev-only-secret-do-not-use-in-production"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up, never per request."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def normalize_database_url(url: str) -> str:
    """Make ``postgres://`` and ``postgresql://`` use psycopg2 (SQLAlchemy 2.1 picks psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


class Config:
    """Settings for a deployed process; class attributes are computed at import of the env."""

    def __init__(self) -> None:
        self.APP_ENV = os.environ.get("APP_ENV", "production").strip().lower()
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or (
            DEV_SECRET if self.APP_ENV in LOCAL_ENVS else None
        )
        instance = Path(os.environ.get("INSTANCE_DIR", Path.cwd() / "instance")).resolve()
        self.INSTANCE_DIR = str(instance)
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(
            os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'download-queue.sqlite3'}"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.REDIS_MAX_CONNECTIONS = _int("REDIS_MAX_CONNECTIONS", 64, minimum=4)
        self.FILES_ROOT = str(Path(os.environ.get("FILES_ROOT", instance / "files")).resolve())
        self.ISSUER_API_KEY = os.environ.get("ISSUER_API_KEY") or None
        self.TOKEN_TTL = _int("TOKEN_TTL", 3600, minimum=1)
        self.TOKEN_RATE_LIMIT = os.environ.get("TOKEN_RATE_LIMIT", "60/minute")
        self.TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)
        self.PORT = _int("PORT", 8000, minimum=1)
        self.WEB_CONCURRENCY = _int("WEB_CONCURRENCY", 2, minimum=1)
        self.QUEUE_NAME = os.environ.get("QUEUE_NAME", "default")
        self.QUEUE_CAPACITY = _int("QUEUE_CAPACITY", 4, minimum=1)
        self.ADMIT_TIMEOUT = _int("ADMIT_TIMEOUT", 60, minimum=1)
        self.STALL_TIMEOUT = _int("STALL_TIMEOUT", 30, minimum=1)
        self.RESUME_GRACE = _int("RESUME_GRACE", 120, minimum=1)
        self.WAIT_GRACE = _int("WAIT_GRACE", 30, minimum=1)
        self.MAX_QUEUE_LENGTH = _int("MAX_QUEUE_LENGTH", 100_000, minimum=1)
        self.BANDWIDTH_LIMIT = _int("BANDWIDTH_LIMIT", 0)
        self.MAX_CONNECTIONS_PER_TOKEN = _int("MAX_CONNECTIONS_PER_TOKEN", 4, minimum=1)
        self.X_ACCEL_REDIRECT = os.environ.get("X_ACCEL_REDIRECT") or None
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL
        self.RATELIMIT_KEY_PREFIX = "dq-limits"
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.TESTING = self.APP_ENV == "test"

    def validate(self) -> None:
        """Fail start-up loudly instead of running with an unsafe or broken setting."""
        if not self.SECRET_KEY:
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random string "
                "(or APP_ENV=local for a development run)."
            )
        if self.APP_ENV not in LOCAL_ENVS and self.SECRET_KEY == DEV_SECRET:
            raise ConfigError("SECRET_KEY is the development placeholder; set a real one.")
        for name in ("ADMIT_TIMEOUT", "STALL_TIMEOUT", "RESUME_GRACE", "WAIT_GRACE"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 second")


def load_config(**overrides: object) -> Config:
    """Read the environment, apply explicit overrides (tests), and validate."""
    config = Config()
    for key, value in overrides.items():
        setattr(config, key, value)
    config.validate()
    return config
