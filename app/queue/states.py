"""One vocabulary for a token's state in the queue, shared by the scripts' replies and Python."""
from __future__ import annotations

from enum import StrEnum


class TokenState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    SPENT = "spent"
    NONE = "none"
    REMOVED = "removed"  # taken out by an operator
    EXPIRED = "expired"
    FULL = "full"
    DRAINING = "draining"  # refused: the line takes no newcomers


# the states in which a token holds one of the queue's slots
HELD = frozenset({TokenState.ADMITTED, TokenState.DOWNLOADING, TokenState.PAUSED})


class Reply(StrEnum):
    """What ``start`` and ``progress`` answer about a download connection."""

    OK = "ok"
    PAUSED = "paused"
    COMPLETE = "complete"
    GONE = "gone"
    TAIL = "tail"
    TOO_MANY = "too_many"


class QueueMode(StrEnum):
    """What the line does now, set by operators."""

    OPEN = "open"
    PAUSED = "paused"  # nobody is admitted; waiters keep their places
    DRAINING = "draining"  # no newcomers; the line is served to its end
