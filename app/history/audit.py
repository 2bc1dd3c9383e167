"""The audit trail of operators' changes and the history figures the admin page shows."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func

from ..extensions import db
from .models import AuditEntry, Download


def record_change(actor: str, action: str, details: dict[str, Any]) -> AuditEntry:
    entry = AuditEntry(at=datetime.now(UTC), actor=actor[:128], action=action, details=details)
    db.session.add(entry)
    db.session.commit()
    return entry


def recent_changes(limit: int = 50) -> list[dict[str, Any]]:
    rows = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [{"at": row.at.isoformat(), "actor": row.actor, "action": row.action, "details": row.details}
            for row in rows]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def today_figures(now: datetime | None = None) -> dict[str, Any]:
    """Completions, outcomes by kind and wait-time percentiles since midnight UTC."""
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    outcomes = dict(db.session.execute(
        db.select(Download.outcome, func.count()).where(Download.finished_at >= midnight)
        .group_by(Download.outcome)
    ).all())
    waits = [
        (admitted - joined).total_seconds()
        for joined, admitted in db.session.execute(
            db.select(Download.joined_at, Download.admitted_at).where(
                Download.admitted_at >= midnight, Download.joined_at.is_not(None)
            ).limit(100_000)
        ).all()
    ]
    return {
        "since": midnight.isoformat(),
        "completed": int(outcomes.get("completed", 0)),
        "outcomes": {str(k): int(v) for k, v in outcomes.items() if k},
        "admitted": len(waits),
        "wait_p50_seconds": _percentile(waits, 0.50),
        "wait_p95_seconds": _percentile(waits, 0.95),
    }
