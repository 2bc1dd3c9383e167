"""The event hub: one subscription per process that wakes the local waiters whose view changed.

The engine publishes one event per state change: the epoch and version, the tokens admitted
and the join numbers that left the line. ``PositionTracker`` turns those into positions
without asking Redis. Admissions wake their waiter at once; position changes are coalesced:
the front of the line hears every ``coalesce`` seconds, waiters further back at most every
``FAR_INTERVAL`` seconds within a budget per flush. Waiters whose events are not known here
(a gap, a new epoch, a new subscription) are asked about in chunks, spread out, so a Redis
blip does not turn into a storm.

The hub keeps nobody present by itself: ``housekeeping.Housekeeping`` (this process's sign of
life) does, and tells the hub when the queue had given this process up (``resync_all``).

Its two loops (events, coalesced flushes) use ``threading``; under gunicorn's gevent worker
they are greenlets.
"""
from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..cooperative import yield_now
from ..errors import AppError, Unavailable
from .connection import refresh, subscribe
from .constants import STATUS_CHUNK
from .engine import QueueEngine
from .replies import Snapshot
from .retries import Retries
from .states import HAS_SLOT, StatusMode
from .tracker import Change, Observed, PositionTracker, Waiter, WaiterState

log = logging.getLogger(__name__)

WAKE_BATCH = 32
# waiters this near the front hear every move (coalesced); those further back hear at most
# every FAR_INTERVAL seconds, and no more than FAR_BUDGET of them per flush, oldest news first,
# FAR_BATCH at a time spread over FAR_SPREAD of the flush interval: a busy line never turns into
# one burst of hundreds of writes, which every process sharing the cores (the other workers, the
# clients) would feel, and an admission arriving meanwhile waits for a few writes at most
NEAR_FRONT = 100
FAR_INTERVAL = 5.0
FAR_BUDGET = 500
FAR_BATCH = 4
FAR_SPREAD = 0.9
RESYNC_PAUSE = 0.005  # between two resync chunks: other clients of Redis go first
RESYNC_JITTER = 1.0  # a new subscription waits up to this long before resyncing


def _wake(waiters: list[Waiter]) -> None:
    now = time.monotonic()
    for waiter in waiters:
        waiter.woken_at = now
        waiter.changed.set()


class QueueHub:
    """Per-process fan-out of queue events to local waiters."""

    def __init__(
        self,
        engine: QueueEngine,
        retries: Retries,
        coalesce: float = 1.0,
        history: int = 4096,
        resync_jitter: float = RESYNC_JITTER,
        on_event: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.engine = engine
        self.retries = retries  # a stream's end must reach the queue, even after an outage
        self.on_event = on_event  # hears every published event as it arrives (metrics)
        self.coalesce = coalesce
        self.resync_jitter = resync_jitter
        self.tracker = PositionTracker(history)
        self.waiters: dict[str, set[Waiter]] = {}
        self._dirty = False
        self._deferred: dict[Waiter, None] = {}  # far-back waiters with news, in the order deferred
        self._stale = threading.Event()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pubsub: Any = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        for target in (self._listen, self._flush_loop):
            thread = threading.Thread(target=target, name=f"queue-hub-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._subscribed.wait(5)

    def close(self) -> None:
        """Stop the loops and end every local stream, so clients reconnect elsewhere.

        The waiters' places are not given back one by one: this process stops renewing its
        sign of life and the queue starts their grace from its last renewal."""
        self._stop.set()
        with self._lock:
            for waiter in self._all_waiters():
                waiter.state = WaiterState.CLOSED
                waiter.changed.set()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                self._pubsub.close()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- waiters ---------------------------------------------------------------------
    def attach(self, token_id: str, snap: Snapshot) -> Waiter:
        """Track a local waiter from the snapshot its (holding) join returned."""
        with self._lock:
            line = self.tracker.last_snapshot
            if line is None or line.epoch != snap.epoch or line.version < snap.version:
                line = snap  # otherwise share the tracker's figures: one object, not one per waiter
            elif line.version == snap.version:  # a join publishes nothing: its reply counts the newcomer
                line.absorb(snap)  # one snapshot for every waiter at this version, not one each
            waiter = Waiter(token_id, snap.seq or 0, snap.position or 0, snap.version, snap.epoch, line)
            if snap.state != WaiterState.WAITING:
                waiter.state = WaiterState.READY if snap.state in HAS_SLOT else WaiterState.GONE
            if self.closed:
                waiter.state = WaiterState.CLOSED
            self.waiters.setdefault(token_id, set()).add(waiter)
            if self.tracker.catch_up(waiter) != Change.SAME:
                self._dirty = True
        return waiter

    def detach(self, waiter: Waiter) -> None:
        """The stream ended: its wait grace starts now (unless another stream here holds it)."""
        with self._lock:
            self._deferred.pop(waiter, None)
            group = self.waiters.get(waiter.token_id, set())
            group.discard(waiter)
            if group:
                return
            self.waiters.pop(waiter.token_id, None)
        if waiter.state == WaiterState.WAITING and not self.closed:
            self.retries.call(lambda: self._unbind(waiter.token_id))

    def _unbind(self, token_id: str) -> None:
        if token_id not in self.waiters:  # not re-attached meanwhile
            self.engine.unbind(token_id)

    def resync_all(self) -> None:
        """Ask the queue about every local waiter at the next flush (the queue had given this
        process up for dead: its streams must hold their waiters again)."""
        self._stale.set()

    def _all_waiters(self) -> list[Waiter]:
        return [w for group in self.waiters.values() for w in group]

    # -- events ----------------------------------------------------------------------
    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self._pubsub = subscribe(self.engine.client, self.engine.keys.channel)
                # a new subscription may follow a restart or a failover: start from what the
                # queue says now, even if its version went back
                snap = self.engine.summary()
                with self._lock:
                    self.tracker.reset(snap)
                    self._dirty = True
                self._subscribed.set()
                while not self._stop.is_set():
                    # a bounded wait: an idle channel must not hit the client's socket timeout
                    message = self._pubsub.get_message(timeout=1.0)
                    kind = message and message.get("type")
                    if kind in ("message", "smessage"):
                        self.apply(Snapshot.from_dict(json.loads(message["data"])))
                    elif kind in ("sunsubscribe", "unsubscribe"):
                        raise RedisConnectionError("the server ended the subscription (the slot moved)")
            except (RedisError, AppError, OSError, ValueError, AttributeError) as exc:
                if self._stop.is_set():
                    return
                log.warning("queue event subscription lost (%s); reconnecting", exc)
                with contextlib.suppress(RedisError, OSError, AttributeError):
                    self._pubsub.close()
                with contextlib.suppress(RedisError, OSError):
                    refresh(self.engine.client)
                self._stop.wait(0.5 + random.random() * self.resync_jitter)

    def apply(self, event: Snapshot) -> None:
        """Apply one published event: admissions wake now, moves at the next flush."""
        if self.on_event is not None:
            self.on_event(event)
        with self._lock:
            seen = self.tracker.observe(event)
            if seen == Observed.OLD:
                return
            if seen != Observed.APPLIED:
                log.info("queue events missed (%s at version %d); resyncing", seen, event.version)
            for token_id in event.admitted:
                for waiter in self.waiters.get(token_id, ()):
                    if self.tracker.admitted_now(event, waiter):
                        waiter.changed.set()
            for token_id, seq in event.placed:  # a release placed pre-queued waiters
                for waiter in self.waiters.get(token_id, ()):
                    self.tracker.placed_now(waiter, seq)
            self._dirty = True

    def _flush_loop(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(max(0.0, began + self.coalesce - time.monotonic())):
            began = time.monotonic()  # a flush that paced its writes still starts once a coalesce
            try:
                self.flush()
            except Exception:
                log.exception("queue hub flush failed")

    def flush(self) -> None:
        """Bring every local waiter up to date and wake those whose view changed.

        A batch at a time, the lock let go and the sockets polled in between, so an admission
        arriving meanwhile is applied and woken at once rather than queued behind thousands of
        position updates."""
        if not (self._dirty or self._deferred or self._stale.is_set()):
            return
        everyone = self._stale.is_set()
        self._stale.clear()
        with self._lock:
            groups = list(self.waiters.values()) if self._dirty or everyone else []
            self._dirty = False
        moved, stale = [], []
        cache: dict[tuple[int, int, str], list[int]] = {}
        for batch in self._locked_batches(groups):
            for waiter in (w for group in batch for w in group):
                if not everyone and waiter in self._deferred and self.tracker.nearest(waiter, cache) > NEAR_FRONT:
                    continue  # its news waits its turn, and it catches up then
                change = Change.STALE if everyone else self.tracker.catch_up(waiter, cache)
                if change == Change.MOVED:
                    moved.append(waiter)
                elif change == Change.STALE:
                    stale.append(waiter)
        near, far, late = self._due(moved, cache)
        stale += late
        for start in range(0, len(near), WAKE_BATCH):
            _wake(near[start:start + WAKE_BATCH])
            yield_now()
        if stale:
            self._resync(stale)
        batches = range(0, len(far), FAR_BATCH)
        for start in batches:
            _wake(far[start:start + FAR_BATCH])
            if self._stop.wait(self.coalesce * FAR_SPREAD / len(batches)):
                return

    def _locked_batches(self, items: list[Any]) -> Iterator[list[Any]]:
        """``items`` a ``WAKE_BATCH`` at a time, each handled under the lock; in between the lock
        is let go and the sockets polled, so an admission is not held behind the whole list."""
        for start in range(0, len(items), WAKE_BATCH):
            with self._lock:
                yield items[start:start + WAKE_BATCH]
            yield_now()

    def _due(self, moved: list[Waiter],
             cache: dict[tuple[int, int, str], list[int]]) -> tuple[list[Waiter], list[Waiter], list[Waiter]]:
        """Who hears about a move now: the front of the line and state changes (first), and
        far-back waiters whose last update is ``FAR_INTERVAL`` old, oldest first (the others wait).

        Far-back waiters queue in the order they were deferred, so picking the due ones costs
        the budget, not the line: a waiter deferred behind one not yet due waits for it (at
        most ``FAR_INTERVAL`` more). A deferred waiter is not caught up at every flush (that
        would cost the line each second): it is when its turn comes (the third list: those whose
        events are not known here then, to ask about), or as soon as it may have come within
        ``NEAR_FRONT``."""
        near, far, stale = [], [], []
        for batch in self._locked_batches(moved):
            for waiter in batch:
                if waiter.state != WaiterState.WAITING or waiter.position <= NEAR_FRONT:
                    self._deferred.pop(waiter, None)
                    near.append(waiter)
                else:
                    self._deferred.setdefault(waiter, None)
        now = time.monotonic()
        while True:
            with self._lock:
                more = self._take_due(now, cache, near, far, stale)
            if not more:
                return near, far, stale
            yield_now()

    def _take_due(self, now: float, cache: dict[tuple[int, int, str], list[int]],
                  near: list[Waiter], far: list[Waiter], stale: list[Waiter]) -> bool:
        """Up to ``WAKE_BATCH`` deferred waiters whose turn has come, into their lists; False once
        none is left due or the budget is spent."""
        for _ in range(WAKE_BATCH):
            if not self._deferred or len(far) >= FAR_BUDGET:
                return False
            waiter = next(iter(self._deferred))
            if waiter.state == WaiterState.WAITING and now - waiter.woken_at < FAR_INTERVAL:
                return False
            del self._deferred[waiter]
            if waiter.state != WaiterState.WAITING:
                continue  # woken when its state changed
            if self.tracker.catch_up(waiter, cache) == Change.STALE:
                stale.append(waiter)
            elif waiter.state != WaiterState.WAITING:  # gone (or admitted) in events it had not seen
                near.append(waiter)
            else:
                far.append(waiter)
        return True

    def _resync(self, waiters: list[Waiter]) -> None:
        """Ask Redis for the truth about waiters, a chunk at a time (this process's streams hold
        them, so the queue learns again that they are connected)."""
        ids = sorted({w.token_id for w in waiters if w.state == WaiterState.WAITING})
        for start in range(0, len(ids), STATUS_CHUNK):
            chunk = ids[start:start + STATUS_CHUNK]
            try:
                snap = self.engine.status(chunk, mode=StatusMode.RESYNC)
            except Unavailable:
                log.warning("queue resync failed; retrying at the next flush")
                self._stale.set()
                return
            changed = []
            with self._lock:
                for token_id in chunk:
                    for waiter in self.waiters.get(token_id, ()):
                        if self.tracker.settle(waiter, snap.tokens[token_id], snap):
                            changed.append(waiter)
            _wake(changed)
            self._stop.wait(RESYNC_PAUSE)

    def freshen(self, snap: Snapshot) -> None:
        """A reply at the version the tracker is at carries fresher figures (the running
        downloads' progress, for the ETA): the line's snapshot becomes it."""
        with self._lock:
            last = self.tracker.last_snapshot
            if last is not None and (last.epoch, last.version) == (snap.epoch, snap.version):
                self.tracker.last_snapshot = snap

    def line_for(self, waiter: Waiter) -> Snapshot:
        """The freshest figures that match what this waiter has seen (its position is exact at
        its version)."""
        last = self.tracker.last_snapshot
        if last is not None and (last.epoch, last.version) == (waiter.epoch, waiter.version):
            return last
        return waiter.snap
