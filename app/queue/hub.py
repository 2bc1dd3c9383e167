"""One subscription per process that wakes the local waiters whose view changed.

The engine publishes one event per state change: the new version, the tokens admitted and
the join numbers that left the line. A waiter's position is the number of waiters ahead of
it, so each removed join number below a waiter's own moves it up by one: positions are kept
here without asking Redis. Admissions wake their waiter at once; position changes are
coalesced: the front of the line hears every ``coalesce`` seconds, waiters further back at
most every ``FAR_INTERVAL`` seconds within a budget per flush. A missed event (a gap in the
versions, a reconnect) triggers one resync call for all local waiters.

Background loops use ``threading``; under gunicorn's gevent worker they are greenlets.
"""
from __future__ import annotations

import bisect
import contextlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from ..errors import Unavailable
from .engine import QueueEngine, Snapshot

log = logging.getLogger(__name__)

WAITING, READY, GONE, CLOSED = "waiting", "ready", "gone", "closed"
WAKE_BATCH = 256
# waiters this near the front hear every move (coalesced); those further back hear at most
# every FAR_INTERVAL seconds, and no more than FAR_BUDGET of them per flush, oldest news first,
# so a busy line never turns into one burst of thousands of writes
NEAR_FRONT = 100
FAR_INTERVAL = 5.0
FAR_BUDGET = 500


def _wake(waiters: list[Waiter]) -> None:
    now = time.monotonic()
    for waiter in waiters:
        waiter.woken_at = now
        waiter.changed.set()


@dataclass(eq=False)
class Waiter:
    """A client of this process waiting in line; read by its stream, written by the hub."""

    token_id: str
    seq: int
    position: int
    version: int
    snap: Snapshot  # the line's latest figures (waiting, active, capacity, rate) it has seen
    state: str = WAITING
    woken_at: float = 0.0
    changed: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float) -> bool:
        """Block until the hub changed this waiter's view (True) or ``timeout`` passed."""
        woke = self.changed.wait(timeout)
        self.changed.clear()
        return woke

    def eta_seconds(self) -> int | None:
        return self.snap.eta_seconds(self.position)


@dataclass
class _Event:
    version: int
    removed: list[int]
    admitted: list[str]


class QueueHub:
    """Per-process fan-out of queue events to local waiters, plus housekeeping loops."""

    def __init__(
        self,
        engine: QueueEngine,
        coalesce: float = 1.0,
        touch_interval: float | None = None,
        reap_interval: float = 1.0,
        history: int = 4096,
    ) -> None:
        self.engine = engine
        self.coalesce = coalesce
        self.touch_interval = touch_interval or max(1.0, min(10.0, engine.settings.wait_grace / 3))
        self.reap_interval = reap_interval
        self.waiters: dict[str, set[Waiter]] = {}
        self.version = 0
        self.recent: deque[_Event] = deque(maxlen=history)
        self.last_snapshot: Snapshot | None = None
        self._dirty = False
        self._deferred: set[Waiter] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pubsub: Any = None
        self._touched_version = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        for target in (self._listen, self._flush_loop, self._housekeeping_loop):
            thread = threading.Thread(target=target, name=f"queue-hub-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._subscribed.wait(5)

    def close(self) -> None:
        """Stop the loops and end every local stream, so clients reconnect elsewhere."""
        self._stop.set()
        with self._lock:
            for waiter in self._all_waiters():
                waiter.state = CLOSED
                waiter.changed.set()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                self._pubsub.close()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- waiters ---------------------------------------------------------------------
    def attach(self, token_id: str, snap: Snapshot) -> Waiter:
        """Track a local waiter from the snapshot its join returned."""
        waiter = Waiter(token_id, snap.seq or 0, snap.position or 0, snap.version, snap)
        if snap.state != WAITING:
            waiter.state = READY if snap.state in ("admitted", "downloading", "paused") else GONE
        if self.closed:
            waiter.state = CLOSED
        with self._lock:
            self.waiters.setdefault(token_id, set()).add(waiter)
            if waiter.state == WAITING and waiter.version < self.version:
                _wake(self._catch_up([waiter]))
        return waiter

    def detach(self, waiter: Waiter) -> None:
        """The stream ended: forget it locally; in Redis its place is kept for the grace."""
        with self._lock:
            self._deferred.discard(waiter)
            group = self.waiters.get(waiter.token_id, set())
            group.discard(waiter)
            still_here = bool(group)
            if not still_here:
                self.waiters.pop(waiter.token_id, None)
        if waiter.state == WAITING and not still_here and not self.closed:
            try:
                self.engine.touch([waiter.token_id])
            except Unavailable:
                log.warning("could not start the grace period of %s", waiter.token_id)

    def _all_waiters(self) -> list[Waiter]:
        return [w for group in self.waiters.values() for w in group]

    # -- events ----------------------------------------------------------------------
    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self._pubsub = self.engine.client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.engine.keys.channel)
                self._subscribed.set()
                self.resync()
                while not self._stop.is_set():
                    # a bounded wait: an idle channel must not hit the client's socket timeout
                    message = self._pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.apply(json.loads(message["data"]))
            except (RedisError, Unavailable, OSError, ValueError, AttributeError) as exc:
                if self._stop.is_set():
                    return
                log.warning("queue event subscription lost (%s); reconnecting", exc)
                with contextlib.suppress(RedisError, OSError):
                    self._pubsub.close()
                self._stop.wait(0.5)

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one published event; a gap in versions means events were missed."""
        version = int(event["version"])
        snap = Snapshot.from_dict(event)
        with self._lock:
            if version <= self.version:
                return
            if version != self.version + 1:
                log.info("queue events %d..%d missed; resyncing", self.version + 1, version - 1)
                self.resync()
                return
            self.version = version
            self.last_snapshot = snap
            self.recent.append(_Event(version, sorted(snap.removed), snap.admitted))
            for token_id in snap.admitted:
                for waiter in self.waiters.get(token_id, ()):
                    waiter.state = READY
                    waiter.version = version
                    waiter.changed.set()
            self._dirty = True

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.coalesce):
            if self._dirty or self._deferred:
                with self._lock:
                    self._dirty = False
                    moved = self._catch_up([w for w in self._all_waiters() if w.state == WAITING])
                    due = self._due(moved)
                # in batches, so an admission arriving meanwhile is not queued behind thousands
                for start in range(0, len(due), WAKE_BATCH):
                    _wake(due[start:start + WAKE_BATCH])
                    time.sleep(0)

    def _due(self, moved: list[Waiter]) -> list[Waiter]:
        """Who hears about a move now: the front of the line, state changes, and far-back
        waiters whose last update is ``FAR_INTERVAL`` old (the others are deferred)."""
        now = time.monotonic()
        self._deferred = {w for w in self._deferred if w.state == WAITING}
        self._deferred.update(moved)
        due = [w for w in self._deferred if w.state != WAITING or w.position <= NEAR_FRONT]
        self._deferred.difference_update(due)
        stale = sorted((w for w in self._deferred if now - w.woken_at >= FAR_INTERVAL),
                       key=lambda w: w.woken_at)[:FAR_BUDGET]
        self._deferred.difference_update(stale)
        return due + stale

    def _catch_up(self, waiters: list[Waiter]) -> list[Waiter]:
        """Move waiters up by the removals they have not seen yet; returns those to wake."""
        if not waiters:
            return []
        moved_waiters: list[Waiter] = []
        oldest = self.recent[0].version if self.recent else self.version + 1
        removed_since: dict[int, list[int]] = {}
        stale: list[Waiter] = []
        snap = self.last_snapshot
        for waiter in waiters:
            if waiter.version >= self.version:
                continue
            if waiter.version + 1 < oldest:
                stale.append(waiter)
                continue
            seqs = removed_since.get(waiter.version)
            if seqs is None:
                seqs = sorted(s for e in self.recent if e.version > waiter.version for s in e.removed)
                removed_since[waiter.version] = seqs
            moved = bisect.bisect_left(seqs, waiter.seq)
            if moved < len(seqs) and seqs[moved] == waiter.seq:
                # its own place was removed: admitted (in an event it missed) or gone
                waiter.state = READY if self._admitted_since(waiter) else GONE
                moved_waiters.append(waiter)
            elif moved:
                waiter.position = max(1, waiter.position - moved)
                moved_waiters.append(waiter)
            waiter.version = self.version
            if snap is not None:
                waiter.snap = snap
        if stale:
            moved_waiters.extend(self._resync_waiters(stale))
        return moved_waiters

    def _admitted_since(self, waiter: Waiter) -> bool:
        return any(waiter.token_id in e.admitted for e in self.recent if e.version > waiter.version)

    def resync(self) -> None:
        """Ask Redis for the true view of every local waiter (after missed events)."""
        with self._lock:
            _wake(self._resync_waiters(self._all_waiters()))

    def _resync_waiters(self, waiters: list[Waiter]) -> list[Waiter]:
        """Set waiters to their true view in Redis; returns those whose view changed."""
        ids = sorted({w.token_id for w in waiters})
        try:
            snap = self.engine.status(ids)
        except Unavailable:
            log.warning("queue resync failed; will retry on the next event")
            return []
        self.version = max(self.version, snap.version)
        self.last_snapshot = snap
        self.recent.clear()
        changed = []
        for waiter in waiters:
            state, position, _lease = snap.tokens.get(waiter.token_id, ["none", 0, 0])
            waiter.version = snap.version
            waiter.snap = snap
            if state == WAITING:
                if position != waiter.position:
                    waiter.position = position
                    changed.append(waiter)
            elif waiter.state == WAITING:
                waiter.state = READY if state in ("admitted", "downloading", "paused") else GONE
                changed.append(waiter)
        return changed

    # -- housekeeping -------------------------------------------------------------------
    def _housekeeping_loop(self) -> None:
        next_touch = 0.0
        elapsed = 0.0
        while not self._stop.wait(self.reap_interval):
            elapsed += self.reap_interval
            try:
                self.engine.reap()
                if elapsed >= next_touch:
                    next_touch = elapsed + self.touch_interval
                    self._touch()
            except Unavailable as exc:
                log.warning("queue housekeeping failed: %s", exc.__cause__ or exc)
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("queue housekeeping crashed")

    def _touch(self) -> None:
        """Renew the presence of every connected waiter in one call; detect missed events."""
        with self._lock:
            ids = list(self.waiters)
        seen = self._touched_version
        grace = self.engine.settings.wait_grace + self.touch_interval
        self._touched_version = self.engine.touch(ids, grace=grace).version
        if seen > self.version:
            self.resync()
