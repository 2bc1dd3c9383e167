"""Calls the queue must hear (a stream's end, a download's final report), kept while Redis is
away and made again by the housekeeping loop once it answers."""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import Unavailable

log = logging.getLogger(__name__)

MAX_RETRIES = 100_000  # calls kept for retry while Redis is away


class Retries:
    """Calls the queue must hear, kept while Redis is away."""

    def __init__(self, limit: int = MAX_RETRIES) -> None:
        self.limit = limit
        self._calls: deque[Callable[[], Any]] = deque()

    def __len__(self) -> int:
        return len(self._calls)

    def call(self, call: Callable[[], Any]) -> None:
        """Make the call now; while Redis is away keep it for the next ``drain``."""
        try:
            call()
        except Unavailable:
            if len(self._calls) >= self.limit:
                log.error("dropping a queue call kept for retry: %d are waiting", self.limit)
                self._calls.popleft()
            self._calls.append(call)

    def drain(self) -> None:
        """Make the kept calls again, oldest first, until Redis is away again."""
        while self._calls:
            call = self._calls[0]
            try:
                call()
            except Unavailable:
                return
            except Exception:
                log.exception("a queue call kept for retry failed")
            self._calls.popleft()
