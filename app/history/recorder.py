"""Moves the queue's journal (a Redis stream) into the ``downloads`` table.

The queue scripts append an event in the same atomic step as the state change, so an
outcome is never lost when the process that reclaimed a lease dies: the entry waits in
the stream, in a consumer group, until some process has written it and acknowledged it.
Entries left pending by a dead consumer are claimed by another after ``claim_idle``.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..extensions import db
from ..logs import token_ref
from ..queue.states import JournalEvent
from .models import Download

log = logging.getLogger(__name__)
GROUP = "history"


def _when(ms: bytes | str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _fields(entry: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in entry.items()}


def _columns(event: dict[str, str]) -> dict[str, Any]:
    """The columns one journal event sets (events may arrive in any order)."""
    kind, ts = event.get("event"), event.get("ts", "0")
    file_id = int(event.get("file") or 0) or None
    columns: dict[str, Any] = {"file_id": file_id}
    if kind == JournalEvent.ADMITTED:
        columns.update(admitted_at=_when(ts), joined_at=_when(event.get("joined", ts)),
                       client_addr=event.get("client") or None,
                       place_drawn=int(event["drawn"]) if event.get("drawn") else None)
    elif kind == JournalEvent.STARTED:
        columns.update(started_at=_when(ts))
    elif kind == JournalEvent.FINISHED:
        columns.update(finished_at=_when(ts), outcome=event.get("outcome"),
                       bytes_sent=int(event.get("bytes") or 0), bytes_resent=int(event.get("resent") or 0))
    return columns


def log_event(event: dict[str, str]) -> None:
    """The queue event's log line (each journal entry is recorded once, by one process)."""
    kind = event.get("event", "")
    extra: dict[str, Any] = {"event": kind, "token": token_ref(event.get("t", "")),
                             "file_id": int(event.get("file") or 0)}
    if kind == JournalEvent.ADMITTED:
        extra["waited_seconds"] = (int(event.get("ts", 0)) - int(event.get("joined", event.get("ts", 0)))) / 1000
    elif kind == JournalEvent.FINISHED:
        extra.update(outcome=event.get("outcome"), bytes=int(event.get("bytes") or 0),
                     resent=int(event.get("resent") or 0))
    log.info(kind, extra=extra)


# the column that dates each kind of event: an event older than what its row holds for that kind
# changes nothing (a token admitted again after a stall has two; a dead consumer's pending
# entries are claimed after newer ones were written)
STAMP = {JournalEvent.ADMITTED: "admitted_at", JournalEvent.STARTED: "started_at",
         JournalEvent.FINISHED: "finished_at"}


FOREIGN_KEY_VIOLATION = "23503"


def record(event: dict[str, str]) -> None:
    """Upsert the row of the event's token (idempotent: replaying an event is harmless, and so is
    writing it after a newer one of its kind). A file removed from the catalog meanwhile leaves
    the row without its file, not the journal stuck on it."""
    columns = _columns(event)
    stamp = STAMP.get(event.get("event", ""))
    for attempt in (1, 2, 3):
        row = db.session.scalar(db.select(Download).filter_by(token_id=event["t"]))
        if row is None:
            row = Download(token_id=event["t"], bytes_sent=0, bytes_resent=0)
            db.session.add(row)
        held = getattr(row, stamp) if stamp else None
        if held is not None and held > columns[stamp]:
            return
        for name, value in columns.items():
            if value is not None:
                setattr(row, name, value)
        try:
            db.session.commit()
            return
        except IntegrityError as exc:
            db.session.rollback()
            if getattr(exc.orig, "pgcode", None) == FOREIGN_KEY_VIOLATION:
                columns["file_id"] = None
            elif attempt == 3:
                raise


class HistoryRecorder:
    """A background loop per process draining the journal into the database."""

    def __init__(
        self,
        client: Redis,
        stream: str,
        app_context: Callable[[], Any],
        block_ms: int = 2000,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.app_context = app_context
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._ensure_group()
                while not self._stop.is_set():
                    self.drain_once()
            except (RedisError, OSError, SQLAlchemyError) as exc:
                log.warning("history recorder: %s; retrying", exc)
                self._stop.wait(1.0)

    def drain_once(self) -> int:
        """Write one batch of journal entries (new ones, or ones a dead consumer left)."""
        _, claimed, *_ = self.client.xautoclaim(
            self.stream, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=100
        )
        entries = list(claimed)
        if not entries:
            reply = self.client.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=200, block=self.block_ms
            )
            entries = [e for _, batch in reply or [] for e in batch]
        if not entries:
            return 0
        with self.app_context():
            for _, entry in entries:
                if entry:
                    fields = _fields(entry)
                    record(fields)
                    log_event(fields)
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline()
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        return len(entries)
