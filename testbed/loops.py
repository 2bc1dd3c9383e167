"""A process's queue loops outside the app (tests, benchmarks), as ``app.runtime`` starts them."""
from __future__ import annotations

from app.queue.engine import QueueEngine
from app.queue.housekeeping import Housekeeping, Retries
from app.queue.hub import QueueHub


class ProcessHub(QueueHub):
    """A process's queue loops as the runtime starts them: the event hub and its housekeeping
    (this process's sign of life, reaping every ``reap_interval`` seconds)."""

    def __init__(self, engine: QueueEngine, coalesce: float = 1.0, reap_interval: float = 1.0, **options: float) -> None:
        super().__init__(engine, Retries(), coalesce=coalesce, **options)
        self.housekeeping = Housekeeping(engine, self.retries, self.freshen, self.resync_all, interval=reap_interval)

    def start(self) -> None:
        super().start()
        self.housekeeping.start()

    def close(self) -> None:
        self.housekeeping.close()
        super().close()
