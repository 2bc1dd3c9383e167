"""The composition root of a process: its Redis client, queue engine, event hub, history
recorder and metrics, built lazily on first use so they are created after fork.

``start_background`` starts the two loops by name: the hub (event fan-out, and the
housekeeping that reaps and is this process's sign of life) and the history recorder.
Nothing here is per request.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

from flask import Flask

from .history.recorder import HistoryRecorder
from .metrics import ProcessMetrics
from .queue.connection import connect
from .queue.engine import QueueEngine, QueueSettings, Snapshot
from .queue.hub import QueueHub
from .storage.bandwidth import HostBandwidth


class QueueRuntime:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.metrics = ProcessMetrics()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._engine: QueueEngine | None = None
        self._hub: QueueHub | None = None
        self._recorder: HistoryRecorder | None = None
        self._bandwidth: HostBandwidth | None = None

    def _fresh(self) -> bool:
        return self._pid == os.getpid()

    @property
    def engine(self) -> QueueEngine:
        """The process's engine and its Redis client, built anew after a fork."""
        with self._lock:
            if self._engine is None or not self._fresh():
                config = self.app.config
                client = connect(config["REDIS_URL"], config["REDIS_MAX_CONNECTIONS"], **config["REDIS_OPTIONS"])
                engine = QueueEngine(client, config["QUEUE_NAME"], QueueSettings.from_config(config),
                                     replicas=config["REDIS_WAIT_REPLICAS"],
                                     replica_timeout=config["REDIS_WAIT_TIMEOUT"] / 1000)
                engine.on_call = self.metrics.script_called
                self._engine, self._hub, self._recorder, self._bandwidth = engine, None, None, None
                self._pid = os.getpid()
            return self._engine

    @property
    def hub(self) -> QueueHub:
        """The process's event hub, started on first use (a stream needs its housekeeping)."""
        engine = self.engine
        with self._lock:
            if self._hub is None:
                self._hub = QueueHub(engine, on_event=self._event_seen)
                self._hub.start()
            return self._hub

    @property
    def bandwidth(self) -> HostBandwidth | None:
        """The process's side of the host's ``BANDWIDTH_LIMIT`` (None without one)."""
        engine, limit = self.engine, self.app.config["BANDWIDTH_LIMIT"]
        if not limit:
            return None
        with self._lock:
            if self._bandwidth is None:
                self._bandwidth = HostBandwidth(engine.client, engine.keys.prefix, limit, engine.owner)
            return self._bandwidth

    def _event_seen(self, event: Snapshot) -> None:
        self.metrics.event_lag.observe(max(0.0, time.time() - event.now / 1000))

    def start_recorder(self) -> HistoryRecorder:
        """The loop that moves the queue's journal into the history table."""
        engine = self.engine
        with self._lock:
            if self._recorder is None:
                self._recorder = HistoryRecorder(engine.client, engine.keys.journal, self.app.app_context)
                self._recorder.start()
            return self._recorder

    def start_background(self) -> None:
        """Start the hub and the history recorder now (gunicorn's post_worker_init)."""
        self.hub  # noqa: B018 - the property starts it
        self.start_recorder()

    def shutdown(self) -> None:
        """End every local stream promptly and stop the background loops."""
        if self._hub is not None and self._fresh():
            self._hub.close()
        if self._recorder is not None and self._fresh():
            self._recorder.close()


def runtime(app: Any) -> QueueRuntime:
    return app.extensions["download_queue"]
