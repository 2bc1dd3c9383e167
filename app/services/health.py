"""Liveness of the backing services, for ``/healthz``."""
from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import AppError
from ..extensions import db
from ..queue.engine import QueueEngine
from ..storage.objects import Store

ESSENTIAL = ("redis", "database")  # without these nothing works; without the store, cached files still do


def check(engine: QueueEngine, store: Store) -> dict[str, str]:
    """``{"redis": "ok"|reason, "database": ..., "storage": ...}``; never raises."""
    result = {}
    try:
        engine.summary()  # the queue's own keys, not merely a node that answers PING
        result["redis"] = "ok"
    except (AppError, RedisError, OSError) as exc:
        cause = exc.__cause__ if isinstance(exc, AppError) and exc.__cause__ else exc
        result["redis"] = f"error: {type(cause).__name__}"
    try:
        db.session.execute(text("SELECT 1"))
        result["database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        result["database"] = f"error: {type(exc).__name__}"
    try:
        store.check()
        result["storage"] = "ok"
    except AppError as exc:
        result["storage"] = f"error: {exc.message}"
    return result
