"""This process's sign of life and the calls that must reach the queue whatever happens.

``Housekeeping`` calls ``reap`` about once a second: it reclaims what ran out everywhere and is
this process's sign of life, which keeps every waiter of its streams and every download
connection it serves counted (one call per process, whatever the number of waiters). After a
burst (a dead process, many places lapsing at once) it keeps going, a bounded call at a time. When
a scheduled release is due, it places the release's pre-queue a batch a call (every process
that sees it due helps; each call is atomic, so none is placed twice). When
the queue says it had given this process up for dead, ``on_rebind`` (the hub) holds its waiters
again; every reap reply goes to ``on_reply`` (the hub's freshest figures for the ETA).

The kept calls (``Retries``) are made again in each round, once Redis answers. A process with
downloads running sends their reports (``Reporter``) in the round's call instead of a bare reap:
one call per process per second carries its sign of life and all of its downloads' progress.

The loop uses ``threading``; under gunicorn's gevent worker it is a greenlet.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import Unavailable
from .constants import OWNER_TTL_MS
from .engine import QueueEngine
from .replies import Snapshot
from .reporter import Reporter
from .retries import Retries

log = logging.getLogger(__name__)

REAP_BURST, REAP_PAUSE = 500, 0.01  # at most 500 reap calls per round, 10 ms apart
RELEASE_PAUSE = 0.002  # between two release calls (each places RELEASE_BATCH waiters)


class Housekeeping:
    """The once-a-second loop: reap (with the downloads' reports), notice a rebind, make the kept
    calls."""

    def __init__(
        self, engine: QueueEngine, retries: Retries, reporter: Reporter, on_reply: Callable[[Snapshot], None],
        on_rebind: Callable[[], None], interval: float = 1.0,
    ) -> None:
        self.engine = engine
        self.retries = retries
        self.reporter = reporter
        self.on_reply = on_reply
        self.on_rebind = on_rebind
        self.interval = interval
        self._rebinds = engine.rebinds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="queue-housekeeping", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:
            try:
                self.round()
            except Unavailable as exc:
                log.warning("queue housekeeping failed: %s", exc.__cause__ or exc)
            except Exception:
                log.exception("queue housekeeping crashed")
            if self._stop.wait(self.interval):
                return

    def round(self) -> None:
        self._reap()
        if self.engine.rebinds != self._rebinds:
            self._rebinds = self.engine.rebinds
            log.warning("the queue had given this process up for dead (no sign of life for %d s); holding its "
                        "waiters again", OWNER_TTL_MS // 1000)
            self.on_rebind()
        self.retries.drain()

    def _reap(self) -> None:
        """Reclaim what ran out and send the downloads' reports; after a burst (or with more reports
        than a call carries) keep going, with pauses that let other clients of Redis in."""
        for _ in range(REAP_BURST):
            snap = self.reporter.send() or self.engine.reap()
            self.on_reply(snap)
            if snap.due:
                self._release()
            if not (snap.more or len(self.reporter)) or self._stop.wait(REAP_PAUSE):
                return

    def _release(self) -> None:
        for _ in range(REAP_BURST):
            snap = self.engine.release()
            self.on_reply(snap)
            if not snap.due or self._stop.wait(RELEASE_PAUSE):
                return
