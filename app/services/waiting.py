"""Waiting in line: join, status, leave, and the live event feed of one waiter."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..catalog.service import get_file
from ..errors import AppError, NotInQueue, TokenExpired
from ..logs import token_ref
from ..queue.engine import QueueEngine, Snapshot
from ..queue.hub import NEAR_FRONT
from ..queue.states import HELD, TokenState
from ..queue.tracker import WaiterState
from ..runtime import runtime
from .refusals import lapsed, refusal
from .tokens import TokenClaims, iso_utc, verification_keys, verify_token

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
ETA_REFRESH_SECONDS = 5.0  # a waiter's ETA is looked at again this often, even without news


def _eta_moved(eta: int | None, sent: int | None, position: int) -> bool:
    """Worth telling: any change near the front (the hub's NEAR_FRONT); further back, a tenth."""
    if eta is None or sent is None:
        return eta != sent
    if position <= NEAR_FRONT:
        return eta != sent
    return abs(eta - sent) >= max(1, sent // 10)

# engine state -> the state a client sees
CLIENT_STATES = {
    "waiting": "waiting",
    "admitted": "ready",
    "downloading": "downloading",
    "paused": "downloading",
    "spent": "done",
    "none": "not_queued",
}


@dataclass(frozen=True)
class QueueEvent:
    """One message for a waiting client: position, ready, error, heartbeat or closed."""

    kind: str
    data: dict[str, Any]
    id: int | None = None


def claims_for(app: Flask, token: str, allow_expired: bool = False) -> TokenClaims:
    try:
        return verify_token(verification_keys(app.config), token)
    except TokenExpired:
        if not allow_expired:
            raise
        return verify_token(verification_keys(app.config), token, now=0)


def join(app: Flask, token: str, client_addr: str, hold: bool = False) -> tuple[TokenClaims, Snapshot]:
    """Join or re-attach; a refused join raises the error the client sees.

    ``hold``: the caller's stream holds the place while this process lives (SSE); otherwise
    the place is kept for the wait grace and renewed by status polls."""
    claims = claims_for(app, token)
    return claims, _join(app, claims, client_addr, hold)


def _join(app: Flask, claims: TokenClaims, client_addr: str, hold: bool) -> Snapshot:
    record = get_file(claims.file_id)
    rt = runtime(app)
    if hold:
        rt.hub  # noqa: B018 - its housekeeping is the sign of life that holds the place
    snap = rt.engine.join(claims.token_id, record.id, record.size, claims.expires_at, client_addr, hold=hold)
    error = refusal(snap.state, snap) if snap.state != TokenState.WAITING else None
    if error is not None:
        raise error
    if snap.joined:
        log.info("joined", extra={"event": "joined", "token": token_ref(claims.token_id), "file_id": record.id,
                                  "position": snap.position, "waiting": snap.waiting})
    return snap


def view(snap: Snapshot, state: str, position: int | None) -> dict[str, Any]:
    return {
        "state": CLIENT_STATES.get(state, state),
        "position": position,
        "eta_seconds": snap.eta_seconds(position) if state == "waiting" else None,
        "waiting": snap.waiting,
        "active": snap.active,
        "capacity": snap.capacity,
        "mode": str(snap.mode),
    }


def status(app: Flask, token: str) -> dict[str, Any]:
    """The token's state; polling it counts as presence, keeping a waiter's place."""
    claims = claims_for(app, token, allow_expired=True)
    snap = runtime(app).engine.status([claims.token_id], mode="renew")
    token = snap.tokens[claims.token_id]
    state: str = token.state
    if claims.expires_at <= time.time() and state in (TokenState.NONE, TokenState.WAITING):
        state = TokenState.EXPIRED
    return view(snap, state, token.position or None)


def leave(app: Flask, token: str) -> dict[str, Any]:
    claims = claims_for(app, token, allow_expired=True)
    snap = runtime(app).engine.leave(claims.token_id)
    return {"left": snap.state != "none", "previous_state": CLIENT_STATES.get(snap.state, snap.state)}


def summary(app: Flask) -> dict[str, Any]:
    snap = runtime(app).engine.summary()
    return {
        "capacity": snap.capacity,
        "active": snap.active,
        "waiting": snap.waiting,
        "mode": str(snap.mode),
        "eta_seconds": snap.eta_seconds(snap.waiting + 1),
    }


def events(app: Flask, claims: TokenClaims, snap: Snapshot, client_addr: str) -> Iterator[QueueEvent]:
    """Position updates until the waiter is admitted (then ``ready``) or must stop.

    If the queue lost its data (Redis restarted empty, a failover lost writes), a waiter whose
    token is still valid joins again instead of being told its place lapsed."""
    rt = runtime(app)
    hub = rt.hub
    waiter = hub.attach(claims.token_id, snap)
    last: tuple[Any, ...] | None = None
    sent_eta: int | None = None
    sent_at = time.monotonic()
    rt.metrics.streams.inc()
    try:
        while True:
            if waiter.state == WaiterState.READY:
                admit_timeout = runtime(app).engine.settings.admit_timeout
                deadline = iso_utc(time.time() + admit_timeout)
                yield QueueEvent("ready", {"admit_deadline": deadline}, waiter.version)
                return
            if waiter.state == WaiterState.GONE and waiter.lost and claims.expires_at > time.time():
                hub.detach(waiter)
                try:
                    with app.app_context():  # the stream outlives its request's context
                        snap = _join(app, claims, client_addr, hold=True)
                except AppError as exc:
                    yield QueueEvent("error", exc.to_dict())
                    return
                waiter = hub.attach(claims.token_id, snap)
                continue
            if waiter.state == WaiterState.GONE:
                yield _gone_event(rt.engine, claims)
                return
            if waiter.state == WaiterState.CLOSED:
                yield QueueEvent("closed", {})
                return
            line = hub.line_for(waiter)
            eta = line.eta_seconds(waiter.position)
            current = (waiter.position, line.waiting, line.active, line.capacity, str(line.mode))
            if current != last or _eta_moved(eta, sent_eta, waiter.position):
                last, sent_eta, sent_at = current, eta, time.monotonic()
                yield QueueEvent("position", {
                    "position": waiter.position, "waiting": line.waiting, "active": line.active,
                    "capacity": line.capacity, "eta_seconds": eta, "mode": str(line.mode)}, waiter.version)
            if not waiter.wait(ETA_REFRESH_SECONDS) and time.monotonic() - sent_at >= HEARTBEAT_SECONDS:
                sent_at = time.monotonic()
                yield QueueEvent("heartbeat", {})
    finally:
        rt.metrics.streams.dec()
        hub.detach(waiter)


def _gone_event(engine: QueueEngine, claims: TokenClaims) -> QueueEvent:
    """Why a waiter left the line without admission: expired, removed by an operator, or lapsed."""
    if claims.expires_at <= time.time():
        return QueueEvent("error", TokenExpired("The token expired while waiting; request a new one.").to_dict())
    try:
        state = engine.status([claims.token_id]).tokens[claims.token_id].state
    except AppError:
        state = None
    return QueueEvent("error", (refusal(state) or lapsed()).to_dict())


PROGRESS_INTERVAL = 1.0


def progress(app: Flask, token: str) -> Iterator[QueueEvent]:
    """The download's progress as the server counts it (bytes the client acknowledged), about
    once a second while the token holds its slot; then ``done`` (with the sha256 to compare) or
    ``error``. Checks the token now, inside the request."""
    claims = claims_for(app, token, allow_expired=True)
    record = get_file(claims.file_id)
    return _progress_events(runtime(app).engine, claims, record.size, record.sha256)


def _progress_events(engine: QueueEngine, claims: TokenClaims, size: int, sha256: str) -> Iterator[QueueEvent]:
    last: tuple[float, int] | None = None
    rate = 0.0
    while True:
        try:
            view = engine.status([claims.token_id]).tokens[claims.token_id]
        except AppError:
            time.sleep(PROGRESS_INTERVAL)  # the store is away: the download may go on; ask again
            continue
        if view.state == TokenState.SPENT:
            yield QueueEvent("done", {"bytes": size, "size": size, "sha256": sha256})
            return
        if view.state not in HELD:
            error = refusal(view.state, position=view.position) or NotInQueue(
                "The download stopped and its slot went to the next person; join the line again.")
            yield QueueEvent("error", error.to_dict())
            return
        now, sent = time.monotonic(), min(view.bytes, size)
        if last is not None and now > last[0]:
            sample = max(0.0, (sent - last[1]) / (now - last[0]))
            rate = sample if rate == 0 else 0.7 * rate + 0.3 * sample  # smoothed over a few seconds
        last = (now, sent)
        yield QueueEvent("progress", {
            "state": CLIENT_STATES[view.state], "bytes": sent, "size": size,
            "rate_bytes_per_second": round(rate),
            "eta_seconds": round((size - sent) / rate) if rate > 0 else None,
        })
        time.sleep(PROGRESS_INTERVAL)
