"""Queue engines on a test's own queue name (built one way), a process's loops, the journal."""
from __future__ import annotations

import json
import threading
import time
import uuid

import redis
import sqlalchemy as sa

from app.extensions import db
from app.queue.connection import connect, subscribe
from app.queue.engine import QueueEngine
from app.queue.keys import QueueKeys
from app.queue.settings import QueueSettings
from testbed.servers import wait_until

FAR = time.time() + 3600


def new_engine(client: redis.Redis, name: str | None = None, owner: str | None = None, **settings: float) -> QueueEngine:
    """The one way tests build an engine: its own queue unless ``name`` shares one."""
    return QueueEngine(client, name or f"e{uuid.uuid4().hex[:10]}", QueueSettings(**settings), owner=owner)


def advance(engine: QueueEngine, seconds: float) -> None:
    """Move the queue's clock forward (the scripts add this skew to Redis time) while ``engine``'s
    process lives: it showed signs of life all along, as its housekeeping does every second."""
    silence(engine, seconds)
    alive(engine)


def next_second(engine: QueueEngine) -> None:
    """Move the queue's clock to the middle of its next whole second, as ``advance`` does: per-second
    counts (the egress ring) then see each round in its own second, however long the real time
    between rounds was (a fixed skew of 1 s plus the real time between rounds may skip a second)."""
    now = clock_ms(engine)
    advance(engine, ((now // 1000 + 1) * 1000 + 500 - now) / 1000)


def clock_ms(engine: QueueEngine) -> int:
    """The queue's clock: Redis time plus the skew the tests added."""
    seconds, micros = engine.client.time()
    return seconds * 1000 + micros // 1000 + int(engine.client.hget(engine.keys.counters, "skew") or 0)


def silence(engine: QueueEngine, seconds: float) -> None:
    """Move the queue's clock forward with no process heard: Redis was unreachable."""
    engine.client.hincrby(engine.keys.counters, "skew", int(seconds * 1000))


def alive(engine: QueueEngine) -> None:
    """Renew the engine's process's sign of life at the queue's clock, as its housekeeping does
    every second while the process lives."""
    engine.client.zadd(engine.keys.key("owners"), {engine.owner: clock_ms(engine)})


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


class ActiveMonitor:
    """Hears the queue's events on any deployment (sharded on a cluster): the server's own count
    of running downloads at every transition."""

    def __init__(self, url: str, queue: str) -> None:
        self.client = connect(url)
        self.pubsub = subscribe(self.client, QueueKeys(queue).channel)
        self.max_active = 0
        self.events = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            message = self.pubsub.get_message(timeout=0.2)
            if message and message["type"] in ("message", "smessage"):
                self.events += 1
                self.max_active = max(self.max_active, json.loads(message["data"])["active"])

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.pubsub.close()


def history(app) -> list[dict]:
    """The download history rows, in admission order."""
    with app.app_context():
        rows = db.session.execute(sa.text(
            "SELECT token_id, outcome, bytes_sent, joined_at, admitted_at, started_at, finished_at "
            "FROM downloads ORDER BY admitted_at, joined_at")).mappings().all()
        return [dict(r) for r in rows]


def outcome_of(app, token_id: str, timeout: float = 10.0) -> str:
    """The outcome the history recorded for a token, once it has one."""
    def read():
        for row in history(app):
            if row["token_id"] == token_id and row["outcome"]:
                return row["outcome"]
        return None

    return wait_until(read, timeout=timeout, message=f"outcome of {token_id}")


def another_process(engine: QueueEngine, owner: str | None = None) -> QueueEngine:
    """Another process's engine on the same queue (its own owner id unless ``owner``)."""
    return QueueEngine(engine.client, engine.keys.queue, engine.seed, owner=owner)
