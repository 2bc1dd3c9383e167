"""What a live feed yields between its events: a pause, and who may end it early.

A feed (a waiter's place, a download's progress, the admin page's state) is a generator of
events that spends almost all its life waiting. It does not wait itself: it yields a ``Pause``
and is sent back whether its waiter was woken (``True``) or the time ran out. Whoever serves
the feed decides how to wait: a greenlet blocked on the waiter, or none at all while the
stream is parked (``http.parking``).
"""
from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

from ..queue.tracker import Waiter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Pause:
    """Nothing to send for up to ``seconds``, unless ``waiter`` is woken sooner."""

    seconds: float
    waiter: Waiter | None = None

    def wait(self) -> bool:
        """Wait here, blocking the caller (a stream served by a greenlet or thread of its own)."""
        if self.waiter is not None:
            return self.waiter.wait(self.seconds)
        time.sleep(self.seconds)
        return False


Feed = Generator[T | Pause, bool | None, None]  # a feed of events of type T


def only(event: T) -> Feed[T]:
    """A feed of one event (a refusal)."""
    yield event
