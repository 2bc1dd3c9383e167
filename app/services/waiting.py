"""Waiting in line: join, status, leave, and the live event feed of one waiter.

Every function takes the values it works with (the engine, the hub, the app's config) and
returns what the HTTP layer renders; refusals are raised as the errors the client sees.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
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
from .feeds import Feed, Pause, only
from .holders import holder_of
from .refusals import lapsed, refusal
from .tokens import TokenClaims, iso_utc, verification_keys, verify_token

log = logging.getLogger(__name__)

# within every idle timeout a stream meets on its way (Heroku's router 55 s, AWS ALB and nginx
# 60 s by default); each beat wakes its stream, so at 50,000 waiting 15 s beats were the largest
# share of the workers' work between hand-offs (bench/handoff_bench.py: the release's tail)
HEARTBEAT_SECONDS = 30.0
# near the front a waiter's ETA is looked at again this often, even without news, and every
# second by the waiters whose turn is one of the running downloads' ends (their wait is a few
# seconds, and a download just started is measured within one); further back it is at each
# heartbeat (a tenth of it rarely passes sooner). A new figure is told only when it differs from
# the last one counted down, as the page shows it. Both are spread by up to a fifth, so the
# streams one burst of news woke do not all wake again at once (a ready behind them waits)
ETA_REFRESH_SECONDS = 5.0
FIRST_TURN_REFRESH_SECONDS = 1.0
SPREAD = 0.2


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


def _quiet() -> float:
    """The silence after which a stream's heartbeat goes, spread so streams do not beat together."""
    return HEARTBEAT_SECONDS * random.uniform(1 - SPREAD, 1)


def _eta_moved(eta: int | None, shown: float | None, position: int) -> bool:
    """Worth telling, against the figure the client shows (the last told, counted down): a second
    near the front (the hub's NEAR_FRONT); further back, a tenth."""
    if eta is None or shown is None:
        return eta != shown
    if position <= NEAR_FRONT:
        return abs(eta - shown) >= 1
    return abs(eta - shown) >= max(1.0, shown / 10)


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
    return claims, join_claims(engine, claims, client_addr, streamed)


def join_claims(engine: QueueEngine, claims: TokenClaims, client_addr: str, streamed: bool) -> Snapshot:
    record = get_file(claims.file_id)
    snap = engine.join(claims.token_id, record.id, record.size, claims.expires_at, client_addr, streamed=streamed,
                       holder=holder_of(client_addr, claims.issued, claims.subject),
                       release_at=record.release_at.timestamp() if record.release_at else 0)
    error = refusal(snap.state, snap) if snap.state != TokenState.WAITING else None
    if error is not None:
        raise error
    if snap.joined:  # admitted at once: its state says so, and it has no position
        where = {"position": snap.position} if snap.state == TokenState.WAITING else {"state": str(snap.state)}
        log.info("joined", extra={"event": "joined", "token": token_ref(claims.token_id), "file_id": record.id,
                                  **where, "waiting": snap.waiting})
    return snap


def view(snap: Snapshot, state: str, position: int | None, release_at: float | None = None) -> dict[str, Any]:
    """A token's state as the JSON API shows it; a waiter pre-queued for a release has no
    position yet, but the release time (``release_at``, seconds) and the pre-queue's size."""
    body: dict[str, Any] = {
        "state": client_state(state),
        "position": position,
        "eta_seconds": eta_seconds(snap, position) if state == TokenState.WAITING and position else None,
        "waiting": snap.waiting,
        "active": snap.active,
        "capacity": snap.capacity,
        "mode": str(snap.mode),
    }
    if state == TokenState.WAITING and not position and release_at:
        body["release_at"] = iso_utc(release_at)
        body["prequeued"] = snap.prequeued
    return body


def joined_view(snap: Snapshot) -> dict[str, Any]:
    """What a join without a stream answers."""
    release_at = snap.release_at / 1000 if snap.release_at else None
    return view(snap, snap.state or TokenState.WAITING, snap.position, release_at)


def status(engine: QueueEngine, config: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The token's state; polling it counts as presence, keeping a waiter's place."""
    claims = claims_for(config, token, allow_expired=True)
    snap = engine.status([claims.token_id], mode=StatusMode.POLL)
    token_view = snap.tokens[claims.token_id]
    state: str = token_view.state
    if claims.expires_at <= time.time() and state in (TokenState.NONE, TokenState.WAITING):
        state = TokenState.EXPIRED
    release_at = None
    if state == TokenState.WAITING and not token_view.position:  # pre-queued for its file's release
        record = get_file(claims.file_id)
        release_at = record.release_at.timestamp() if record.release_at else None
    return view(snap, state, token_view.position or None, release_at)


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
        "away": snap.away,
        "mode": str(snap.mode),
        "eta_seconds": newcomer_eta(snap),
        "prequeued": snap.prequeued,
        "releases": [{"file_id": file_id, "release_at": iso_utc(at / 1000), "prequeued": count}
                     for file_id, at, count in snap.releases],
    }


@dataclass(frozen=True)
class WaiterFeed:
    """A waiter's stream as the HTTP layer renders it: its events, and where to download."""

    events: Feed[QueueEvent]
    claims: TokenClaims | None


def open_feed(engine: QueueEngine, hub: QueueHub, config: Mapping[str, Any], token: str, client_addr: str,
              app_context: Callable[[], AbstractContextManager[Any]], streams: Any) -> WaiterFeed:
    """Join now (inside the request), then follow the place; a refusal of a real token (expired,
    spent, a full line) is the feed's only event. Something that is not a token opens no stream:
    ``InvalidToken`` is raised for the HTTP layer to answer 403."""
    claims_for(config, token, allow_expired=True)
    try:
        claims, snap = join(engine, config, token, client_addr, streamed=True)
    except AppError as exc:
        return WaiterFeed(only(QueueEvent(EventKind.ERROR, exc.to_dict())), None)
    return WaiterFeed(events(engine, hub, claims, snap, client_addr, app_context, streams), claims)


def events(engine: QueueEngine, hub: QueueHub, claims: TokenClaims, snap: Snapshot, client_addr: str,
           app_context: Callable[[], AbstractContextManager[Any]], streams: Any) -> Feed[QueueEvent]:
    """Position updates until the waiter is admitted (then ``ready``) or must stop; closing the
    feed (its client hung up) starts the place's wait grace at once.

    If the queue lost its data (Redis restarted empty, a failover lost writes), a waiter whose
    token is still valid joins again instead of being told its place lapsed. ``streams``: the
    gauge of open streams (``inc``/``dec``)."""
    waiter = hub.attach(claims.token_id, snap)
    release_at = iso_utc(snap.release_at / 1000) if snap.release_at else None
    del snap  # the join's reply: the hub's shared snapshot has its figures (a stream lives long)
    last: tuple[Any, ...] | None = None
    last_id: int | None = None  # an event's id is the line's version it is exact at, sent once
    told_until: float | None = None  # when the wait last told runs out (the page counts down to it)
    sent_at = time.monotonic()
    quiet = _quiet()  # silence after which a heartbeat goes
    streams.inc()
    try:
        while True:
            if waiter.state == WaiterState.READY:
                deadline = iso_utc(time.time() + engine.settings.admit_timeout)
                yield QueueEvent(EventKind.READY, {"admit_deadline": deadline},
                                 waiter.version if waiter.version != last_id else None)
                return
            if waiter.state == WaiterState.GONE and waiter.lost and claims.expires_at > time.time():
                hub.detach(waiter)
                try:
                    with app_context():  # the stream outlives its request's context
                        waiter = hub.attach(claims.token_id, join_claims(engine, claims, client_addr, streamed=True))
                except AppError as exc:
                    yield QueueEvent(EventKind.ERROR, exc.to_dict())
                    return
                continue
            if waiter.state == WaiterState.GONE:
                yield _gone_event(engine, claims)
                return
            if waiter.state == WaiterState.CLOSED:
                yield QueueEvent(EventKind.CLOSED, {})
                return
            line = hub.line_for(waiter)
            position = waiter.position or None  # None: pre-queued for a release
            eta = eta_seconds(line, position) if position else None
            current = (position, line.waiting, line.active, line.capacity, str(line.mode), line.prequeued)
            shown = None if told_until is None else max(0.0, told_until - time.monotonic())
            if current != last or (position and _eta_moved(eta, shown, position)):
                last, sent_at = current, time.monotonic()
                told_until = None if eta is None else sent_at + eta
                quiet = _quiet()
                data = {"position": position, "waiting": line.waiting, "active": line.active,
                        "capacity": line.capacity, "eta_seconds": eta, "mode": str(line.mode)}
                if position is None and release_at:
                    data.update(release_at=release_at, prequeued=line.prequeued)
                yield QueueEvent(EventKind.POSITION, data, waiter.version if waiter.version != last_id else None)
                last_id = waiter.version
            elif time.monotonic() - sent_at >= quiet:  # nothing to tell (a move held back goes above)
                sent_at, quiet = time.monotonic(), _quiet()
                yield QueueEvent(EventKind.HEARTBEAT, {"every_seconds": round(HEARTBEAT_SECONDS)})
            pause = quiet - (time.monotonic() - sent_at)
            if position and position <= NEAR_FRONT:
                refresh = FIRST_TURN_REFRESH_SECONDS if position <= line.capacity else ETA_REFRESH_SECONDS
                pause = min(pause, refresh * random.uniform(1 - SPREAD, 1))
            yield Pause(max(0.0, pause), waiter)
    finally:
        streams.dec()
        hub.detach(waiter)


def _gone_event(engine: QueueEngine, claims: TokenClaims) -> QueueEvent:
    """Why a waiter left the line without admission: expired, removed by an operator, lapsed after
    its time away, or its turn missed."""
    if claims.expires_at <= time.time():
        return QueueEvent(EventKind.ERROR,
                          TokenExpired("The token expired while waiting; request a new one.").to_dict())
    try:
        snap = engine.status([claims.token_id])
    except AppError:
        return QueueEvent(EventKind.ERROR, lapsed().to_dict())
    return QueueEvent(EventKind.ERROR, (refusal(snap.tokens[claims.token_id].state, snap) or lapsed()).to_dict())

