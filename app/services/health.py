"""Liveness of the backing services, for ``/healthz``."""
from __future__ import annotations

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..runtime import runtime


def check(app: Flask) -> dict[str, str]:
    """``{"redis": "ok"|reason, "database": "ok"|reason}``; never raises."""
    result = {}
    try:
        runtime(app).client.ping()
        result["redis"] = "ok"
    except (RedisError, OSError) as exc:
        result["redis"] = f"error: {type(exc).__name__}"
    try:
        db.session.execute(text("SELECT 1"))
        result["database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        result["database"] = f"error: {type(exc).__name__}"
    return result
