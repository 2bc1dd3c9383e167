"""The composition root of a process: its Redis client, queue engine, event hub, housekeeping,
history recorder, host bandwidth shares, file store and metrics.

They are built together on first use in each process (after gunicorn's fork: the gevent worker
patches sockets then), and built is all that reading them does. ``start`` starts the four
background loops by name (gunicorn's ``post_worker_init``; ``running`` for ``flask run`` and
tests), ``stop`` stops all of them. Nothing here is per request.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .delivery.bandwidth import HostBandwidth
from .history.recorder import HistoryRecorder
from .metrics import ProcessMetrics
from .queue.connection import connect
from .queue.engine import QueueEngine
from .queue.housekeeping import Housekeeping
from .queue.hub import QueueHub
from .queue.replies import Snapshot
from .queue.reporter import Reporter
from .queue.retries import Retries
from .queue.settings import QueueSettings
from .storage.files import Files


@dataclass(frozen=True)
class _Parts:
    """What one process runs, built together."""

    pid: int
    engine: QueueEngine
    retries: Retries
    reporter: Reporter
    hub: QueueHub
    housekeeping: Housekeeping
    recorder: HistoryRecorder
    bandwidth: HostBandwidth | None
    files: Files


class QueueRuntime:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.metrics = ProcessMetrics()
        self._lock = threading.Lock()
        self._parts: _Parts | None = None
        self._started_in: int | None = None

    def _built(self) -> _Parts:
        with self._lock:
            if self._parts is None or self._parts.pid != os.getpid():
                self._parts = self._build()
            return self._parts

    def _build(self) -> _Parts:
        config = self.app.config
        client = connect(config["REDIS_URL"], config["REDIS_MAX_CONNECTIONS"], **config["REDIS_OPTIONS"])
        engine = QueueEngine(client, config["QUEUE_NAME"], QueueSettings.from_config(config),
                             replicas=config["REDIS_WAIT_REPLICAS"], replica_timeout=config["REDIS_WAIT_TIMEOUT"] / 1000)
        engine.on_call = self.metrics.script_called
        retries = Retries()
        hub = QueueHub(engine, retries, on_event=self._event_seen)
        reporter = Reporter(engine, retries)
        housekeeping = Housekeeping(engine, retries, reporter, on_reply=hub.freshen, on_rebind=hub.resync_all)
        recorder = HistoryRecorder(client, engine.keys.journal, self.app.app_context)
        limit = config["BANDWIDTH_LIMIT"]
        bandwidth = HostBandwidth(client, engine.keys.prefix, limit, engine.owner) if limit else None
        files = Files.from_config(config)
        return _Parts(os.getpid(), engine, retries, reporter, hub, housekeeping, recorder, bandwidth, files)

    @property
    def engine(self) -> QueueEngine:
        return self._built().engine

    @property
    def hub(self) -> QueueHub:
        return self._built().hub

    @property
    def retries(self) -> Retries:
        """Calls the queue must hear (a stream's end, a download's last report), kept for the
        housekeeping loop while Redis is away."""
        return self._built().retries

    @property
    def reporter(self) -> Reporter:
        """This process's download reports, sent with its housekeeping round."""
        return self._built().reporter

    @property
    def bandwidth(self) -> HostBandwidth | None:
        """The process's side of the host's ``BANDWIDTH_LIMIT`` (None without one)."""
        return self._built().bandwidth

    @property
    def files(self) -> Files:
        """Where the catalog's bytes are (and this host's cache of them)."""
        return self._built().files

    def _event_seen(self, event: Snapshot) -> None:
        self.metrics.event_lag.observe(max(0.0, time.time() - event.now / 1000))

    def start(self) -> None:
        """Start this process's loops: the event hub, the housekeeping that is its sign of life,
        the history recorder and the bandwidth shares (once per process)."""
        parts = self._built()
        with self._lock:
            if self._started_in == parts.pid:
                return
            self._started_in = parts.pid
        parts.hub.start()
        parts.housekeeping.start()
        parts.recorder.start()
        if parts.bandwidth is not None:
            parts.bandwidth.start()

    def running(self) -> QueueRuntime:
        """This runtime with its loops started (a stream needs them; under gunicorn they started
        with the worker)."""
        self.start()
        return self

    def stop(self) -> None:
        """End every local stream promptly and stop the loops."""
        parts = self._parts
        if parts is None or self._started_in != parts.pid or parts.pid != os.getpid():
            return
        parts.hub.close()
        parts.housekeeping.close()
        parts.recorder.close()
        if parts.bandwidth is not None:
            parts.bandwidth.close()


def runtime(app: Any) -> QueueRuntime:
    return app.extensions["download_queue"]
