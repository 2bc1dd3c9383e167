"""Where each local waiter stands, worked out from the queue's events without asking Redis.

Every event carries the join numbers that left the line (and those a scheduled release placed
in it); a waiter's position is the number of waiters ahead of it, so each removed join number
below its own moves it up by one and each added one moves it back. A pre-queued waiter (join
number 0) has no position until a release places it; then Redis is asked where it stands. This
module is pure arithmetic (no I/O, no threads): the hub feeds it events and resync answers,
and a hypothesis test checks it against ``ZRANK``.
"""
from __future__ import annotations

import bisect
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from .replies import Snapshot, TokenView
from .states import HAS_SLOT, TokenState


class WaiterState(StrEnum):
    WAITING = "waiting"
    READY = "ready"  # admitted: its stream tells it and ends
    GONE = "gone"  # out of the line (lapsed, expired, left elsewhere)
    CLOSED = "closed"  # this process is shutting down


@dataclass(eq=False)
class Waiter:
    """A client of this process waiting in line; read by its stream, written by the hub."""

    token_id: str
    seq: int
    position: int
    version: int
    epoch: int
    snap: Snapshot  # the line's latest figures (waiting, active, capacity, rate) it has seen
    state: WaiterState = WaiterState.WAITING
    lost: bool = False  # gone because the queue's data was lost (a new epoch): it may join again
    placed: bool = False  # a release just placed it (it had no join number): ask Redis its position
    woken_at: float = 0.0
    changed: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float) -> bool:
        """Block until the hub changed this waiter's view (True) or ``timeout`` passed."""
        self.changed.wait(timeout)
        return self.woken()

    def woken(self) -> bool:
        """Whether the hub changed this waiter's view since the last ask (asking forgets it)."""
        woke = self.changed.is_set()
        self.changed.clear()
        return woke


class Change(StrEnum):
    SAME = "same"
    MOVED = "moved"  # position or state changed: wake it
    STALE = "stale"  # the events it needs are not known here: ask Redis


class Observed(StrEnum):
    APPLIED = "applied"
    OLD = "old"  # already seen
    GAP = "gap"  # events were missed: waiters older than this one are stale
    EPOCH = "epoch"  # the queue's counters were born again: every waiter is stale


@dataclass
class _Event:
    version: int
    removed: list[int]
    admitted: frozenset[str]
    added: list[int]


class PositionTracker:
    """The events of one epoch since some version, and the arithmetic on them."""

    def __init__(self, history: int = 4096) -> None:
        self.epoch: int | None = None
        self.version = 0
        self.recent: deque[_Event] = deque(maxlen=history)
        self.last_snapshot: Snapshot | None = None

    @property
    def known_from(self) -> int:
        """Every event after this version is in ``recent``."""
        return self.recent[0].version - 1 if self.recent else self.version

    def reset(self, snap: Snapshot) -> None:
        """Start again from a snapshot (a new epoch, a new subscription)."""
        self.epoch, self.version = snap.epoch, snap.version
        self.recent.clear()
        self.last_snapshot = snap

    def observe(self, snap: Snapshot) -> Observed:
        """Take one published event."""
        if snap.epoch != self.epoch:
            self.reset(snap)
            return Observed.EPOCH
        if snap.version <= self.version:
            return Observed.OLD
        gap = snap.version != self.version + 1
        if gap:
            self.recent.clear()
        self.version = snap.version
        self.last_snapshot = snap
        self.recent.append(_Event(snap.version, sorted(snap.removed), frozenset(snap.admitted), sorted(snap.added)))
        return Observed.GAP if gap else Observed.APPLIED

    def admitted_now(self, snap: Snapshot, waiter: Waiter) -> bool:
        """An event admitting this waiter wakes it at once (positions wait for the flush)."""
        if waiter.state != WaiterState.WAITING or waiter.token_id not in snap.admitted:
            return False
        waiter.state = WaiterState.READY
        waiter.version = max(waiter.version, snap.version)
        return True

    def placed_now(self, waiter: Waiter, seq: int) -> None:
        """A release placed this pre-queued waiter at join number ``seq``."""
        waiter.seq, waiter.placed = seq, True

    def _newer(self, version: int) -> Iterator[_Event]:
        """The events after ``version``, newest first: read from the newest back, not the whole
        history."""
        return itertools.takewhile(lambda e: e.version > version, reversed(self.recent))

    def _since(self, version: int, kind: str, cache: dict[tuple[int, int, str], list[int]]) -> list[int]:
        key = (version, self.version, kind)
        seqs = cache.get(key)
        if seqs is None:
            seqs = sorted(s for e in self._newer(version) for s in getattr(e, kind))
            cache[key] = seqs
        return seqs

    def _unknown(self, waiter: Waiter) -> bool:
        """The events this waiter has not seen are not all here (or a release placed it)."""
        return waiter.epoch != self.epoch or waiter.version < self.known_from or waiter.placed

    def nearest(self, waiter: Waiter, cache: dict[tuple[int, int, str], list[int]]) -> int:
        """The nearest the front ``waiter`` can stand once caught up (every removal since its
        version ahead of it); 0 when not known here (it must catch up to find out)."""
        if self._unknown(waiter) or waiter.seq == 0:
            return 0
        return waiter.position - len(self._since(waiter.version, "removed", cache))

    def catch_up(self, waiter: Waiter, cache: dict[tuple[int, int, str], list[int]] | None = None) -> Change:
        """Move a waiting waiter by the removals and additions it has not seen yet (``cache``:
        the sorted join numbers since a version, shared by the waiters of one flush)."""
        if waiter.state != WaiterState.WAITING:
            return Change.SAME
        if self._unknown(waiter):
            return Change.STALE
        if waiter.version >= self.version or waiter.seq == 0:  # pre-queued: no position to move
            return Change.SAME
        cache = {} if cache is None else cache
        seqs = self._since(waiter.version, "removed", cache)
        ahead = bisect.bisect_left(seqs, waiter.seq)
        new_ahead = bisect.bisect_left(self._since(waiter.version, "added", cache), waiter.seq)
        change = Change.SAME
        if ahead < len(seqs) and seqs[ahead] == waiter.seq:
            # its own place was removed: admitted (in an event it missed) or gone
            admitted = any(waiter.token_id in e.admitted for e in self._newer(waiter.version))
            waiter.state = WaiterState.READY if admitted else WaiterState.GONE
            change = Change.MOVED
        elif ahead != new_ahead:
            waiter.position = max(1, waiter.position - ahead + new_ahead)
            change = Change.MOVED
        waiter.version = self.version
        if self.last_snapshot is not None:
            if self.last_snapshot.mode != waiter.snap.mode:
                change = Change.MOVED  # paused, resumed or draining: waiters are told
            waiter.snap = self.last_snapshot
        return change

    def settle(self, waiter: Waiter, view: TokenView, snap: Snapshot) -> bool:
        """Set a waiter to what Redis says (a resync answer); True when its view changed."""
        if snap.epoch != self.epoch:
            self.reset(snap)
        was_epoch = waiter.epoch
        waiter.version, waiter.epoch, waiter.snap = snap.version, snap.epoch, snap
        waiter.placed = False
        if waiter.state != WaiterState.WAITING:
            return False
        if view.state == TokenState.WAITING:
            waiter.seq = view.seq or waiter.seq
            moved = view.position != waiter.position
            waiter.position = view.position
            return moved
        if view.state in HAS_SLOT:
            waiter.state = WaiterState.READY
        else:
            waiter.state = WaiterState.GONE
            waiter.lost = view.state == TokenState.NONE and was_epoch != snap.epoch
        return True
