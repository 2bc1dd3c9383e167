"""Domain errors shared by every layer; the HTTP layer turns them into JSON responses."""
from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error a client may see: a stable ``code``, an HTTP ``status`` and extra fields."""

    code = "internal"
    status = 500
    message = "Internal server error."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def _error(name: str, code: str, status: int, message: str) -> type[AppError]:
    return type(name, (AppError,), {"code": code, "status": status, "message": message})


Unauthorized = _error("Unauthorized", "unauthorized", 401, "An issuer API key is required.")
InvalidToken = _error("InvalidToken", "invalid_token", 403, "The token is invalid.")
Forbidden = _error("Forbidden", "forbidden", 403, "The API key is not valid.")
UnknownFile = _error("UnknownFile", "unknown_file", 404, "No such file.")
NotYourTurn = _error("NotYourTurn", "not_your_turn", 409, "Wait for your turn in the queue.")
NotInQueue = _error("NotInQueue", "not_in_queue", 409, "Join the queue before downloading.")
TokenExpired = _error("TokenExpired", "token_expired", 410, "The token has expired.")
TokenSpent = _error("TokenSpent", "token_spent", 410, "The token has already been used.")
TokenRemoved = _error("TokenRemoved", "token_removed", 410, "An operator removed this token from the queue.")
PlaceLapsed = _error("PlaceLapsed", "place_lapsed", 410, "Your place lapsed while you were away.")
TurnMissed = _error("TurnMissed", "turn_missed", 410, "Your turn came and passed while you were away.")
InvalidRequest = _error("InvalidRequest", "invalid_request", 400, "The request body is not valid.")
PreconditionFailed = _error(
    "PreconditionFailed", "precondition_failed", 412, "A precondition of the request does not hold."
)
RangeNotSatisfiable = _error(
    "RangeNotSatisfiable", "range_not_satisfiable", 416, "The requested range is not satisfiable."
)
TooManyConnections = _error(
    "TooManyConnections", "too_many_connections", 429, "Too many connections for this token."
)
TooManyPlaces = _error(
    "TooManyPlaces", "too_many_places", 429, "This client already holds as many places as one may."
)
WaitingInLine = _error(
    "WaitingInLine", "waiting_in_line", 503, "Your turn has not come yet; ask again after Retry-After."
)
QueueFull = _error("QueueFull", "queue_full", 503, "The queue is full; try again later.")
QueueDraining = _error(
    "QueueDraining", "queue_draining", 503, "The queue is closing: it takes no new places. Try again later."
)
Unavailable = _error("Unavailable", "unavailable", 503, "A backing service is unavailable.")
