"""A process's queue loops outside the app (tests, benchmarks), as ``app.runtime`` starts them."""
from __future__ import annotations

from app.queue.engine import QueueEngine
from app.queue.housekeeping import Housekeeping
from app.queue.hub import QueueHub
from app.queue.reporter import Reporter
from app.queue.retries import Retries


class ProcessHub(QueueHub):
    """A process's queue loops as the runtime starts them: the event hub and its housekeeping
    (this process's sign of life, reaping every ``reap_interval`` seconds, with the reports of
    ``reporter``'s connections)."""

    def __init__(self, engine: QueueEngine, coalesce: float = 1.0, reap_interval: float = 1.0, **options: float) -> None:
        super().__init__(engine, Retries(), coalesce=coalesce, **options)
        self.reporter = Reporter(engine, self.retries)
        self.housekeeping = Housekeeping(engine, self.retries, self.reporter, self.freshen, self.resync_all,
                                         interval=reap_interval)

    def start(self) -> None:
        super().start()
        self.housekeeping.start()

    def close(self) -> None:
        self.housekeeping.close()
        super().close()
