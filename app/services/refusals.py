"""The one place that turns a token's state in the queue into the error its client sees."""
from __future__ import annotations

import math

from ..errors import (
    AppError,
    NotInQueue,
    NotYourTurn,
    PlaceLapsed,
    QueueDraining,
    QueueFull,
    TokenExpired,
    TokenRemoved,
    TokenSpent,
    TooManyConnections,
    TooManyPlaces,
    TurnMissed,
)
from ..queue.replies import Snapshot
from ..queue.states import Reply, TokenState

DRAINING_RETRY_AFTER = 60  # seconds: a drain lasts as long as its line; ask again in a minute


def retry_after(snap: Snapshot) -> int:
    """Seconds until a place is likely to free up, for a refused newcomer."""
    if snap.rate <= 0:
        return 30
    return max(1, math.ceil(1 / snap.rate))


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def refusal(state: str | None, snap: Snapshot | None = None, position: int | None = None) -> AppError | None:
    """The error for a state that stops what the client asked (None: nothing stops it)."""
    if state == TokenState.SPENT:
        return TokenSpent("This token has already been used for a complete download.")
    if state == TokenState.REMOVED:
        return TokenRemoved("An operator removed this token from the queue; request a new one.")
    if state == TokenState.LAPSED:
        grace = snap.settings.away_grace if snap and snap.settings else None
        away = f" after {_duration(grace)} away" if grace else " while you were away"
        return PlaceLapsed(f"Your place lapsed{away}; request a new token to join again.", away_seconds=grace)
    if state == TokenState.MISSED:
        return TurnMissed("Your turn came and passed unused while you were away; request a new token to "
                          "join again.")
    if state == TokenState.EXPIRED:
        return TokenExpired("The token has expired; request a new one.")
    if state == TokenState.DRAINING:
        return QueueDraining(retry_after=DRAINING_RETRY_AFTER)
    if state == TokenState.FULL and snap is not None:
        seconds = retry_after(snap)
        return QueueFull(f"The queue is full ({snap.waiting} waiting); try again in about {seconds} s.",
                         retry_after=seconds)
    if state == TokenState.TOO_MANY_PLACES and snap is not None:
        limit = snap.settings.max_places_per_client if snap.settings else 0
        return TooManyPlaces(
            f"Your address (or account) already holds {snap.places} places in line, the most one may "
            f"hold; leave one or finish a download first.", places=snap.places, limit=limit)
    if state == TokenState.WAITING and position is not None:
        return NotYourTurn(f"You are number {position} in line; wait for your turn.", position=position)
    if state == Reply.TOO_MANY:
        return TooManyConnections("Too many connections for this token at once.")
    return None


def lapsed() -> AppError:
    return NotInQueue("Your place in line lapsed; join again.")


def not_admitted() -> AppError:
    return NotInQueue("This token is not admitted: join the queue first.")
