"""Building engines on a test's own queue name, and reading the journal back."""
from __future__ import annotations

import time
import uuid

import redis

from app.queue.engine import QueueEngine, QueueSettings

FAR = time.time() + 3600


def new_engine(client: redis.Redis, name: str | None = None, **settings: float) -> QueueEngine:
    return QueueEngine(client, name or f"e{uuid.uuid4().hex[:10]}", QueueSettings(**settings))


def advance(engine: QueueEngine, seconds: float) -> None:
    """Move the queue's clock forward (the scripts add this skew to Redis time)."""
    engine.client.hincrby(engine.keys.counters, "skew", int(seconds * 1000))


def journal(engine: QueueEngine) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in engine.client.xrange(engine.keys.journal)
    ]


def replay_max_active(events: list[dict[str, str]]) -> int:
    """The most tokens holding a slot at once, replaying admissions and releases in order."""
    active = peak = 0
    for event in events:
        if event["event"] == "admitted":
            active += 1
        elif event["event"] == "finished":
            active -= 1
        peak = max(peak, active)
    return peak


def drop(engine: QueueEngine) -> None:
    engine.client.delete(*engine.keys.script_keys)
