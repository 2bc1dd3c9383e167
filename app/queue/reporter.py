"""This process's download connections' progress reports, sent together once a round.

A running connection's report is kept (a newer one of the same connection folds into it) until
the housekeeping round sends every kept report in one call, ``PROGRESS_BATCH`` at most per call:
the queue hears each download about once a second at the cost of one call per process, not one
per download. A closing connection's report goes at once (it may complete the download and
admit the next waiter), after any report of that connection already on its way, so the queue
never hears of a connection after its end. What a call that found Redis away carried is kept
for the next round; what a closing report could not deliver is kept by ``Retries``.
"""
from __future__ import annotations

import contextlib
import itertools
import threading

from ..errors import AppError, Unavailable
from .constants import PROGRESS_BATCH
from .engine import QueueEngine
from .replies import Snapshot
from .reports import ProgressReport
from .retries import Retries
from .states import Reply


class Reporter:
    """The reports of one process's connections, between two of its queue calls."""

    def __init__(self, engine: QueueEngine, retries: Retries) -> None:
        self.engine = engine
        self.retries = retries
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)
        self._kept: dict[str, ProgressReport] = {}  # by connection id
        self._on_the_way: set[str] = set()
        self._gone: set[str] = set()  # connections whose slot the queue took back

    def __len__(self) -> int:
        return len(self._kept)

    def submit(self, report: ProgressReport) -> bool:
        """Keep a running connection's report for the next round; False once the queue said the
        connection's slot is gone (stop sending)."""
        with self._lock:
            if report.conn_id in self._gone:
                return False
            kept = self._kept.get(report.conn_id)
            self._kept[report.conn_id] = kept.then(report) if kept else report
            return True

    def close(self, report: ProgressReport) -> None:
        """A connection's last report (``closing``), sent now with whatever of it was kept."""
        with self._lock:
            while report.conn_id in self._on_the_way:
                self._sent.wait()
            kept = self._kept.pop(report.conn_id, None)
            self._gone.discard(report.conn_id)
        final = kept.then(report) if kept else report
        self.retries.call(lambda: self.engine.report([final]))

    def send_now(self, report: ProgressReport) -> bool:
        """A running connection's report sent at once, alone (a download's first ones: the ETA
        behind it and an egress budget wait for its speed); kept for the next
        round while Redis is away. False once the queue said the slot is gone."""
        with self._lock:
            if report.conn_id in self._gone:
                return False
            while report.conn_id in self._on_the_way:
                self._sent.wait()
            kept = self._kept.pop(report.conn_id, None)
            self._on_the_way.add(report.conn_id)
        with contextlib.suppress(AppError):  # away, or refused (logged): the download goes on
            self._deliver([kept.then(report) if kept else report])
        return report.conn_id not in self._gone

    def send(self) -> Snapshot | None:
        """Send up to ``PROGRESS_BATCH`` kept reports in one call; None when none is kept.

        Raises ``Unavailable`` while Redis is away (the reports are kept for the next round)."""
        with self._lock:
            batch = list(itertools.islice(self._kept.values(), PROGRESS_BATCH))
            for report in batch:
                del self._kept[report.conn_id]
            self._on_the_way.update(report.conn_id for report in batch)
        if not batch:
            return None
        return self._deliver(batch)

    def _deliver(self, batch: list[ProgressReport]) -> Snapshot:
        """One call with reports marked on their way."""
        try:
            snap, states = self.engine.report(batch)
        except Unavailable:
            self._landed(batch, keep=True)
            raise
        except Exception:
            self._landed(batch)  # refused (a bug, logged by the engine): not sent again
            raise
        self._landed(batch, [report.conn_id for report, state in zip(batch, states, strict=True)
                             if state == Reply.GONE])
        return snap

    def _landed(self, batch: list[ProgressReport], gone: list[str] | None = None, keep: bool = False) -> None:
        """A call's reports are no longer on their way: ``gone`` connections stop; with ``keep``
        (not heard) they go again in the next round, with anything newer of theirs."""
        with self._lock:
            self._gone.update(gone or ())
            for report in batch:
                self._on_the_way.discard(report.conn_id)
                if keep:
                    newer = self._kept.get(report.conn_id)
                    self._kept[report.conn_id] = report.then(newer) if newer else report
            self._sent.notify_all()
