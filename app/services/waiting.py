"""Waiting in line: join, status, leave, and the live event feed of one waiter.

Every function takes the values it works with (the engine, the hub, the app's config) and
returns what the HTTP layer renders; refusals are raised as the errors the client sees.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..catalog.service import get_file
from ..errors import AppError, TokenExpired
from ..logs import token_ref
from ..queue.engine import QueueEngine
from ..queue.eta import eta_seconds, newcomer_eta
from ..queue.hub import NEAR_FRONT, QueueHub
from ..queue.replies import Snapshot
from ..queue.states import StatusMode, TokenState, client_state
from ..queue.tracker import WaiterState
from .refusals import lapsed, refusal
from .tokens import TokenClaims, iso_utc, verification_keys, verify_token

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
ETA_REFRESH_SECONDS = 5.0  # a waiter's ETA is looked at again this often, even without news


class EventKind:
    """The kinds of ``QueueEvent`` a feed yields."""

    POSITION = "position"
    READY = "ready"
    ERROR = "error"
    HEARTBEAT = "heartbeat"
    CLOSED = "closed"  # this process is shutting down: reconnect
    PROGRESS = "progress"
    DONE = "done"


@dataclass(frozen=True)
class QueueEvent:
    """One message for a waiting (or downloading) client."""

    kind: str
    data: dict[str, Any]
    id: int | None = None


def _eta_moved(eta: int | None, sent: int | None, position: int) -> bool:
    """Worth telling: any change near the front (the hub's NEAR_FRONT); further back, a tenth."""
    if eta is None or sent is None:
        return eta != sent
    if position <= NEAR_FRONT:
        return eta != sent
    return abs(eta - sent) >= max(1, sent // 10)


def claims_for(config: Mapping[str, Any], token: str, allow_expired: bool = False) -> TokenClaims:
    """The token's claims, checked against the current and the fallback secret keys."""
    try:
        return verify_token(verification_keys(config), token)
    except TokenExpired:
        if not allow_expired:
            raise
        return verify_token(verification_keys(config), token, now=0)


def join(engine: QueueEngine, config: Mapping[str, Any], token: str, client_addr: str,
         streamed: bool = False) -> tuple[TokenClaims, Snapshot]:
    """Join or re-attach; a refused join raises the error the client sees.

    ``streamed``: the caller's stream keeps the place while this process lives (SSE, whose
    process's housekeeping must be running); otherwise the place is kept for the wait grace and
    renewed by status polls."""
    claims = claims_for(config, token)
    return claims, _join(engine, claims, client_addr, streamed)


def _join(engine: QueueEngine, claims: TokenClaims, client_addr: str, streamed: bool) -> Snapshot:
    record = get_file(claims.file_id)
    snap = engine.join(claims.token_id, record.id, record.size, claims.expires_at, client_addr, streamed=streamed)
    error = refusal(snap.state, snap) if snap.state != TokenState.WAITING else None
    if error is not None:
        raise error
    if snap.joined:
        log.info("joined", extra={"event": "joined", "token": token_ref(claims.token_id), "file_id": record.id,
                                  "position": snap.position, "waiting": snap.waiting})
    return snap


def view(snap: Snapshot, state: str, position: int | None) -> dict[str, Any]:
    """A token's state as the JSON API shows it."""
    return {
        "state": client_state(state),
        "position": position,
        "eta_seconds": eta_seconds(snap, position) if state == TokenState.WAITING else None,
        "waiting": snap.waiting,
        "active": snap.active,
        "capacity": snap.capacity,
        "mode": str(snap.mode),
    }


def joined_view(snap: Snapshot) -> dict[str, Any]:
    """What a join without a stream answers."""
    return view(snap, snap.state or TokenState.WAITING, snap.position)


def status(engine: QueueEngine, config: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The token's state; polling it counts as presence, keeping a waiter's place."""
    claims = claims_for(config, token, allow_expired=True)
    snap = engine.status([claims.token_id], mode=StatusMode.POLL)
    token_view = snap.tokens[claims.token_id]
    state: str = token_view.state
    if claims.expires_at <= time.time() and state in (TokenState.NONE, TokenState.WAITING):
        state = TokenState.EXPIRED
    return view(snap, state, token_view.position or None)


def leave(engine: QueueEngine, config: Mapping[str, Any], token: str) -> dict[str, Any]:
    claims = claims_for(config, token, allow_expired=True)
    snap = engine.leave(claims.token_id)
    return {"left": snap.state != TokenState.NONE, "previous_state": client_state(snap.state or TokenState.NONE)}


def summary(engine: QueueEngine) -> dict[str, Any]:
    snap = engine.summary()
    return {
        "capacity": snap.capacity,
        "active": snap.active,
        "waiting": snap.waiting,
        "mode": str(snap.mode),
        "eta_seconds": newcomer_eta(snap),
    }


@dataclass(frozen=True)
class Feed:
    """A waiter's stream as the HTTP layer renders it: its events, and where to download."""

    events: Iterator[QueueEvent]
    claims: TokenClaims | None


def open_feed(engine: QueueEngine, hub: QueueHub, config: Mapping[str, Any], token: str, client_addr: str,
              app_context: Callable[[], AbstractContextManager[Any]], streams: Any) -> Feed:
    """Join now (inside the request), then follow the place; a refusal of a real token (expired,
    spent, a full line) is the feed's only event. Something that is not a token opens no stream:
    ``InvalidToken`` is raised for the HTTP layer to answer 403."""
    claims_for(config, token, allow_expired=True)
    try:
        claims, snap = join(engine, config, token, client_addr, streamed=True)
    except AppError as exc:
        return Feed(iter([QueueEvent(EventKind.ERROR, exc.to_dict())]), None)
    return Feed(events(engine, hub, claims, snap, client_addr, app_context, streams), claims)


def events(engine: QueueEngine, hub: QueueHub, claims: TokenClaims, snap: Snapshot, client_addr: str,
           app_context: Callable[[], AbstractContextManager[Any]], streams: Any) -> Iterator[QueueEvent]:
    """Position updates until the waiter is admitted (then ``ready``) or must stop.

    If the queue lost its data (Redis restarted empty, a failover lost writes), a waiter whose
    token is still valid joins again instead of being told its place lapsed. ``streams``: the
    gauge of open streams (``inc``/``dec``)."""
    waiter = hub.attach(claims.token_id, snap)
    last: tuple[Any, ...] | None = None
    sent_eta: int | None = None
    sent_at = time.monotonic()
    streams.inc()
    try:
        while True:
            if waiter.state == WaiterState.READY:
                deadline = iso_utc(time.time() + engine.settings.admit_timeout)
                yield QueueEvent(EventKind.READY, {"admit_deadline": deadline}, waiter.version)
                return
            if waiter.state == WaiterState.GONE and waiter.lost and claims.expires_at > time.time():
                hub.detach(waiter)
                try:
                    with app_context():  # the stream outlives its request's context
                        snap = _join(engine, claims, client_addr, streamed=True)
                except AppError as exc:
                    yield QueueEvent(EventKind.ERROR, exc.to_dict())
                    return
                waiter = hub.attach(claims.token_id, snap)
                continue
            if waiter.state == WaiterState.GONE:
                yield _gone_event(engine, claims)
                return
            if waiter.state == WaiterState.CLOSED:
                yield QueueEvent(EventKind.CLOSED, {})
                return
            line = hub.line_for(waiter)
            eta = eta_seconds(line, waiter.position)
            current = (waiter.position, line.waiting, line.active, line.capacity, str(line.mode))
            if current != last or _eta_moved(eta, sent_eta, waiter.position):
                last, sent_eta, sent_at = current, eta, time.monotonic()
                yield QueueEvent(EventKind.POSITION, {
                    "position": waiter.position, "waiting": line.waiting, "active": line.active,
                    "capacity": line.capacity, "eta_seconds": eta, "mode": str(line.mode)}, waiter.version)
            if not waiter.wait(ETA_REFRESH_SECONDS) and time.monotonic() - sent_at >= HEARTBEAT_SECONDS:
                sent_at = time.monotonic()
                yield QueueEvent(EventKind.HEARTBEAT, {})
    finally:
        streams.dec()
        hub.detach(waiter)


def _gone_event(engine: QueueEngine, claims: TokenClaims) -> QueueEvent:
    """Why a waiter left the line without admission: expired, removed by an operator, or lapsed."""
    if claims.expires_at <= time.time():
        return QueueEvent(EventKind.ERROR,
                          TokenExpired("The token expired while waiting; request a new one.").to_dict())
    try:
        state = engine.status([claims.token_id]).tokens[claims.token_id].state
    except AppError:
        state = None
    return QueueEvent(EventKind.ERROR, (refusal(state) or lapsed()).to_dict())

