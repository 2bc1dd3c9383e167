"""Scheduled releases: a file's release time in the catalog, and the queue told of each change
(a pre-queue already waiting moves with it; one whose shuffle began is not moved)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..catalog.models import File
from ..catalog.service import set_release
from ..errors import InvalidRequest
from ..history.audit import record_change
from ..queue.engine import MAX_EXPIRY, QueueEngine
from .tokens import iso_utc


def parse_release_at(value: object) -> datetime | None:
    """``2026-12-24T10:00:00Z`` (any ISO 8601 time with a zone), or None to clear (JSON null; the
    command line spells it ``none``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("release_at must be an ISO 8601 time such as 2026-12-24T10:00:00Z, or null.",
                             field="release_at")
    try:
        when = datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not 0 <= when.timestamp() < MAX_EXPIRY:
        raise InvalidRequest(f"release_at {value!r} is not an ISO 8601 time with a zone, such as "
                             "2026-12-24T10:00:00Z.", field="release_at")
    return when.astimezone(UTC)


def release_view(record: File) -> dict[str, Any]:
    return {"file_id": record.id, "name": record.name,
            "release_at": iso_utc(record.release_at.timestamp()) if record.release_at else None}


def schedule(engine: QueueEngine, actor: str, file_id: int, value: object) -> dict[str, Any]:
    """Set or clear a file's release time; waiters pre-queued for it follow the new time (a
    cleared or past one releases them now)."""
    when = parse_release_at(value)
    record = set_release(file_id, when)
    engine.reschedule(record.id, None if when is None else when.timestamp())
    record_change(actor, "release", {"file_id": record.id, "release_at": release_view(record)["release_at"]})
    return release_view(record)
