"""What operators see and change: the line, its running downloads, its rules and its mode.

Every change goes to the queue in one atomic script (all hosts follow from their next call)
and then to the audit table with who made it. The functions take the engine, not the app.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..catalog.models import File
from ..errors import AppError, InvalidRequest
from ..extensions import db
from ..history.audit import record_change, today_figures
from ..queue.constants import BOUND, MAX_INSPECT, is_id
from ..queue.engine import QueueEngine
from ..queue.eta import newcomer_eta
from ..queue.replies import Inspection
from ..queue.settings import QueueSettings
from ..queue.states import QueueMode, TokenState
from .feeds import Feed, Pause
from .holders import shown

MODE_ACTIONS = {QueueMode.PAUSED: "pause", QueueMode.OPEN: "resume", QueueMode.DRAINING: "drain"}


def _ms_iso(ms: int) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds") if ms else None


def settings_view(settings: QueueSettings) -> dict[str, Any]:
    return asdict(settings)


def last_hour(stats: dict[str, int], now_ms: int) -> dict[str, list[int]]:
    """Per-minute bytes and admissions of the last 60 minutes, oldest first (the stats ring)."""
    current = now_ms // 60_000
    minutes, sent, admitted = [], [], []
    for minute in range(current - 59, current + 1):
        slot = minute % 60
        fresh = stats.get(f"m{slot}") == minute
        minutes.append(minute * 60)
        sent.append(stats.get(f"mb{slot}", 0) if fresh else 0)
        admitted.append(stats.get(f"ma{slot}", 0) if fresh else 0)
    return {"minute_starts": minutes, "bytes": sent, "admissions": admitted}


def describe(inspection: Inspection) -> dict[str, Any]:
    """The JSON an operator reads: the line, the rules, every running download, the last hour."""
    snap, stats = inspection.snap, inspection.stats
    names = dict(db.session.execute(
        db.select(File.id, File.name).where(File.id.in_({d.file for d in inspection.downloads}))
    ).all()) if inspection.downloads else {}
    downloads = []
    for d in inspection.downloads:
        elapsed = (snap.now - d.started) / 1000 if d.started else 0
        downloads.append({
            "token_id": d.id,
            "state": d.state,
            "file_id": d.file,
            "file_name": names.get(d.file),
            "client": d.client,
            "bytes_sent": d.bytes,
            "size": d.size,
            "rate_bytes_per_second": round(d.bytes / elapsed) if elapsed > 0 else 0,
            "connections": d.connections,
            "admitted_at": _ms_iso(d.admitted),
            "started_at": _ms_iso(d.started),
            "lease_seconds_left": max(0, math.ceil((d.lease - snap.now) / 1000)),
        })
    return {
        "now": _ms_iso(snap.now),
        "line": {
            "waiting": snap.waiting,
            "away": snap.away,  # keeping their places (AWAY_GRACE), not admitted until they return
            "active": snap.active,
            "capacity": snap.capacity,
            "mode": str(snap.mode),
            "admissions_per_second": round(snap.rate, 3),
            "newcomer_eta_seconds": newcomer_eta(snap),
            # with an egress budget: what the running downloads deliver, and how many it lets run
            "egress_bytes_per_second": None if snap.egress is None else round(snap.egress),
            "admission_limit": snap.limit,
        },
        "settings": settings_view(snap.settings) if snap.settings else None,
        "downloads": downloads,
        "totals": {
            "joins": stats.get("joins", 0),
            "admissions": stats.get("admissions", 0),
            "acked_bytes": stats.get("bytes", 0),
        },
        "last_hour": last_hour(stats, snap.now),
        # MAX_PLACES_PER_CLIENT: who holds the most places (addresses with their last octet hidden)
        "places": {
            "clients": inspection.clients,
            "limit": snap.settings.max_places_per_client if snap.settings else None,
            "refused": stats.get("refused_places", 0),
            "top": [{"client": shown(holder), "places": n} for holder, n in inspection.holders],
        },
    }


def state(engine: QueueEngine, limit: int = 200) -> dict[str, Any]:
    return describe(engine.inspect(min(limit, MAX_INSPECT)))


def _setting(name: str, value: Any) -> int | float:
    try:
        return BOUND[name].parse(value)
    except ValueError as exc:
        raise InvalidRequest(f"{exc}.", field=name) from None


def change_settings(engine: QueueEngine, actor: str, body: Any) -> dict[str, Any]:
    """Set some of the queue's rules (seconds for durations); all checked before any is written."""
    if not isinstance(body, dict) or not body:
        raise InvalidRequest("Send a JSON object with the settings to change, e.g. {\"capacity\": 8}.")
    unknown = sorted(set(body) - set(BOUND))
    if unknown:
        raise InvalidRequest(f"Unknown settings: {', '.join(unknown)}. Known: {', '.join(BOUND)}.",
                             field=unknown[0])
    changes = {name: _setting(name, value) for name, value in body.items()}
    before = engine.settings
    engine.configure(**changes)
    record_change(actor, "settings", {k: {"from": getattr(before, k), "to": v} for k, v in changes.items()})
    return state(engine)


def set_mode(engine: QueueEngine, actor: str, mode: QueueMode) -> dict[str, Any]:
    """Pause admissions, drain the line (no newcomers) or open it again."""
    before = engine.settings.mode
    engine.configure(mode=mode)
    record_change(actor, MODE_ACTIONS[mode], {"from": str(before), "to": str(mode)})
    return state(engine)


def remove_token(engine: QueueEngine, actor: str, token_id: str) -> dict[str, Any]:
    """Take a token out for good; a slot it held goes to the next waiter at once."""
    if not is_id(token_id):
        raise InvalidRequest("That is not a token id.", field="token_id")
    snap = engine.remove(token_id)
    record_change(actor, "remove", {"token_id": token_id, "previous_state": snap.state})
    gone = (TokenState.NONE, TokenState.SPENT, TokenState.REMOVED)
    return {"removed": snap.state not in gone, "previous_state": snap.state}


def live(
    engine: QueueEngine, app_context: Callable[[], Any], interval: float = 1.0, figures_every: float = 10.0
) -> Feed[dict[str, Any]]:
    """The admin page's feed: the state every ``interval`` seconds, today's history figures
    (a database query) when a download started or ended, or every ``figures_every``; an outage is
    reported, not fatal."""
    figures: dict[str, Any] | None = None
    figures_at, totals = -math.inf, None
    while True:
        with app_context():
            try:
                body = state(engine)
                moved = (body["totals"]["admissions"], len(body["downloads"]))  # one started or ended
                if moved != totals or time.monotonic() - figures_at >= figures_every:
                    figures, figures_at, totals = today_figures(), time.monotonic(), moved
                body["today"] = figures
            except (AppError, SQLAlchemyError) as exc:
                db.session.rollback()
                body = {"error": str(exc)}
        yield body
        yield Pause(interval)
