"""Log lines for people (``text``) and for log pipelines (``json``), never carrying a token.

Events are logged with their facts as ``extra`` fields (``log.info("admitted", extra={...})``);
the JSON formatter writes them as keys, the text formatter as ``key=value`` after the message.
A token is a credential: code logs ``token_ref(token_id)``, and both formatters also blank out
anything shaped like a signed token that slipped into a message (an exception's text).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# itsdangerous URL-safe tokens: base64 payload "." signature
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}")
REDACTED = "[token]"
# attributes every LogRecord has: anything else was passed as ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def token_ref(token_id: str) -> str:
    """A short, stable name for a token in logs: the same token always reads the same."""
    return hashlib.sha256(token_id.encode()).hexdigest()[:12]


def redact(text: str) -> str:
    return TOKEN_SHAPE.sub(REDACTED, text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": redact(record.getMessage()),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """gunicorn's layout, with the event's fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                         "%Y-%m-%d %H:%M:%S %z")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return redact(f"{text} {fields}" if fields else text)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``dictConfig`` for the whole process, gunicorn's own loggers included."""
    formatter = "app.logs.JsonFormatter" if fmt == "json" else "app.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # gunicorn's access log prints URLs, and URLs carry tokens: the app logs requests
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "alembic": {"level": "WARNING"},  # its plugin set-up chatter at import
        },
    }
