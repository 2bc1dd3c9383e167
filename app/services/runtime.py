"""Per-process queue machinery, built lazily on first use so it is created after fork.

Holds the one Redis client of the process, the engine bound to it, the event hub (one
subscription per process) and the history recorder. Nothing here is per request.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask
from redis import Redis

from ..history.recorder import HistoryRecorder
from ..queue.connection import connect
from ..queue.engine import QueueEngine, QueueSettings
from ..queue.hub import QueueHub


class QueueRuntime:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._engine: QueueEngine | None = None
        self._hub: QueueHub | None = None
        self._recorder: HistoryRecorder | None = None

    def _fresh(self) -> bool:
        return self._pid == os.getpid()

    @property
    def engine(self) -> QueueEngine:
        """The process's engine and its Redis client, built anew after a fork."""
        with self._lock:
            if self._engine is None or not self._fresh():
                config = self.app.config
                client = connect(config["REDIS_URL"], config["REDIS_MAX_CONNECTIONS"])
                self._engine = QueueEngine(client, config["QUEUE_NAME"], QueueSettings.from_config(config))
                self._hub = self._recorder = None
                self._pid = os.getpid()
            return self._engine

    @property
    def client(self) -> Redis:
        return self.engine.client

    @property
    def hub(self) -> QueueHub:
        """The process's event hub; starting it also starts the history recorder."""
        engine = self.engine
        with self._lock:
            if self._hub is None:
                self._hub = QueueHub(engine)
                self._hub.start()
                self._recorder = HistoryRecorder(engine.client, engine.keys.journal, self.app.app_context)
                self._recorder.start()
            return self._hub

    def start_background(self) -> None:
        """Start the hub, reaper and recorder now (gunicorn's post_worker_init)."""
        self.hub  # noqa: B018 - the property starts them

    def shutdown(self) -> None:
        """End every local stream promptly and stop the background loops."""
        if self._hub is not None and self._fresh():
            self._hub.close()
        if self._recorder is not None and self._fresh():
            self._recorder.close()


def runtime(app: Any) -> QueueRuntime:
    return app.extensions["download_queue"]
