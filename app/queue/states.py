"""The queue's vocabulary: every state, reply, outcome and reason has one name, here.

The scripts receive these words in their generated header (``constants.lua_header``), so Lua
replies, services, metrics, the OpenAPI document and the history table all speak them.
"""
from __future__ import annotations

from enum import StrEnum


class TokenState(StrEnum):
    """A token as the queue knows it (what the scripts answer)."""

    WAITING = "waiting"
    ADMITTED = "admitted"  # its turn came; no connection yet
    DOWNLOADING = "downloading"
    PAUSED = "paused"  # no connection open: its slot is kept for the resume grace
    SPENT = "spent"  # completed
    NONE = "none"  # unknown to the queue
    REMOVED = "removed"  # taken out by an operator
    EXPIRED = "expired"  # refused: the token's time is up
    FULL = "full"  # refused: the line is at its length limit
    DRAINING = "draining"  # refused: the line takes no newcomers
    TOO_MANY_PLACES = "too_many_places"  # refused: its client holds MAX_PLACES_PER_CLIENT places
    LAPSED = "lapsed"  # out of the line: away for longer than the away grace
    MISSED = "missed"  # out of the line: its turn came and passed unused


# the states in which a token has one of the queue's download slots
HAS_SLOT = frozenset({TokenState.ADMITTED, TokenState.DOWNLOADING, TokenState.PAUSED})


class ClientState(StrEnum):
    """A token as its client hears of it (the JSON API)."""

    WAITING = "waiting"
    READY = "ready"
    DOWNLOADING = "downloading"
    DONE = "done"
    NOT_QUEUED = "not_queued"
    EXPIRED = "expired"
    REMOVED = "removed"
    LAPSED = "lapsed"  # away longer than the away grace: the place is gone
    MISSED = "missed"  # the turn came and passed unused


CLIENT_STATE_OF: dict[str, ClientState] = {
    TokenState.WAITING: ClientState.WAITING,
    TokenState.ADMITTED: ClientState.READY,
    TokenState.DOWNLOADING: ClientState.DOWNLOADING,
    TokenState.PAUSED: ClientState.DOWNLOADING,
    TokenState.SPENT: ClientState.DONE,
    TokenState.NONE: ClientState.NOT_QUEUED,
    TokenState.EXPIRED: ClientState.EXPIRED,
    TokenState.REMOVED: ClientState.REMOVED,
    TokenState.LAPSED: ClientState.LAPSED,
    TokenState.MISSED: ClientState.MISSED,
}


def client_state(state: str) -> ClientState:
    """What a client is told about a token in ``state`` (a refusal is not a state to show)."""
    return CLIENT_STATE_OF.get(state, ClientState.NOT_QUEUED)


class Reply(StrEnum):
    """What ``start`` and ``progress`` answer about a download connection."""

    OK = "ok"
    PAUSED = "paused"
    COMPLETE = "complete"
    GONE = "gone"
    TAIL = "tail"
    TOO_MANY = "too_many"


class Outcome(StrEnum):
    """How an admitted token's download ended (the history's ``outcome``)."""

    COMPLETED = "completed"
    LEFT = "left"
    NO_SHOW = "no_show"  # admitted, never started
    STALLED = "stalled"  # started, then its client stopped acknowledging
    ABANDONED = "abandoned"  # paused, and not resumed within the grace
    REMOVED = "removed"


class DropReason(StrEnum):
    """Why a waiter lost its place without admission."""

    LEFT = "left"
    LAPSED = "lapsed"  # no stream, no poll for the wait grace
    EXPIRED = "expired"
    REMOVED = "removed"


class QueueMode(StrEnum):
    """What the line does now, set by operators."""

    OPEN = "open"
    PAUSED = "paused"  # nobody is admitted; waiters keep their places
    DRAINING = "draining"  # no newcomers; the line is served to its end


class StatusMode(StrEnum):
    """What asking for tokens' states also does."""

    READ = "read"  # nothing
    POLL = "poll"  # a poll counts as being seen: a waiter's presence is renewed
    RESYNC = "resync"  # this process's streams hold the waiters again (after missed events)


class JournalEvent(StrEnum):
    """What the journal stream records for the history table."""

    ADMITTED = "admitted"
    STARTED = "started"
    FINISHED = "finished"
