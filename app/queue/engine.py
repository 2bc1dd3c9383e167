"""The queue engine: every decision about the line is one atomic Lua script in Redis.

Python only checks and converts arguments and replies; there is no check-then-act here and no
state kept beside Redis. Leases use Redis server time, so hosts with skewed clocks agree. The
queue's rules (capacity, leases, graces) live in Redis with the queue: a process only seeds them
when the queue has none, and follows what the queue says from then on.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MasterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import AppError, Unavailable
from .connection import database_of, is_cluster, node_for, refresh
from .constants import (
    CLIENT_MAX,
    DRAW_BITS,
    HOLDER_MAX,
    MAX_INSPECT,
    MAX_INT,
    MAX_MS,
    MAX_STATUS_IDS,
    MS,
    PROGRESS_BATCH,
    RELEASE_BATCH,
    is_id,
)
from .keys import QueueKeys
from .replies import Inspection, RunningDownload, Snapshot
from .reports import ProgressReport
from .scripts import QueueScripts
from .settings import QueueSettings, stored_changes
from .states import StatusMode

log = logging.getLogger(__name__)

MAX_EXPIRY = MAX_MS // MS  # seconds since the epoch (year 2286): any later expiry is a bad argument
# scripts whose decisions must survive a failover (with ``replicas``, they wait for the replicas'
# acknowledgement before anyone is told): a place in line, an admission, a start, a completion,
# a removal, a change of the rules. Reads and stream presence (renewed every second) do not.
DURABLE = frozenset({"join", "leave", "reap", "start", "progress", "configure", "remove"})
UNREPLICATED_LOG_EVERY = 10.0  # seconds between two warnings about writes no replica confirmed


class QueueScriptError(AppError):
    """A queue script refused its input or failed: a bug to log, not an outage to report."""

    code = "internal"
    status = 500
    message = "The queue could not process this request."


def new_owner() -> str:
    """A name for this process in the queue; a process that stops renewing it is dead."""
    host = socket.gethostname().replace("|", "_")[:40]
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def _check_id(value: str, what: str) -> str:
    if not is_id(value):
        raise ValueError(f"bad {what}")  # never the value: it may be a token's id
    return value


def _ms(seconds: float, what: str) -> int:
    """A time in seconds since the epoch as the scripts take it (ms)."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and 0 <= seconds < MAX_EXPIRY):
        raise ValueError(f"bad {what}: {seconds!r}")
    return int(seconds * MS)


def _check_count(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise ValueError(f"bad {what}: {value!r}")
    return value


def _is_outage(exc: RedisError) -> bool:
    """Connection trouble, a failover, a loading replica, a slot on the move, or a primary that
    refuses writes no replica would see (``min-replicas-to-write``): unavailable for now."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ReadOnlyError | MasterDownError):
        return True
    return not isinstance(exc, ResponseError) or str(exc).startswith(
        ("LOADING", "TRYAGAIN", "CLUSTERDOWN", "ASK", "NOREPLICAS", "MASTERDOWN"))


class QueueEngine:
    """Python API of one queue; safe to share across greenlets and threads of a process."""

    def __init__(
        self, client: Redis | RedisCluster, name: str, settings: QueueSettings, owner: str | None = None,
        replicas: int = 0, replica_timeout: float = 0.1,
    ) -> None:
        """``replicas``: durable calls (``DURABLE``) wait up to ``replica_timeout`` seconds for that
        many replicas to confirm their writes (Redis ``WAIT``) before their reply is used."""
        self.client = client
        self.keys = QueueKeys(name, database_of(client))
        self.seed = settings
        self.settings = settings  # the queue's own, refreshed by every reply
        self.owner = owner if owner is not None else new_owner()
        self.rebinds = 0  # times the queue had given this process up for dead
        self.scripts = QueueScripts(client, sharded=is_cluster(client))
        self.replicas = replicas
        self.replica_timeout_ms = max(1, round(replica_timeout * 1000))
        self.unreplicated = 0  # durable calls no replica confirmed in time
        self._warned_at = -UNREPLICATED_LOG_EVERY
        self._common = [self.keys.channel, self.owner, *settings.seed_args()]
        self._told = False
        self._known = False  # the queue has heard of this process
        self.on_call: Callable[[str, float], None] | None = None  # (script, seconds): metrics

    def _run(self, name: str, *args: Any, as_owner: bool = True) -> Snapshot:
        """Run a script as this process (``as_owner``: what it binds, this process holds until
        it stops showing signs of life) or as nobody."""
        snap, _ = self._call(name, *args, as_owner=as_owner)
        return snap

    def _call(self, name: str, *args: Any, as_owner: bool = True) -> tuple[Snapshot, dict[str, Any]]:
        """The script's reply as a snapshot and as the JSON it was parsed from."""
        common = self._common if as_owner else [self._common[0], "", *self._common[2:]]
        script = self.scripts[name]
        keys, argv = self.keys.script_keys, [*common, *args]
        started = time.perf_counter()
        try:
            if self.replicas and name in DURABLE:
                raw = self._replicated(name, script, keys, argv)
            else:
                try:
                    raw = script(keys=keys, args=argv)
                except NoScriptError:
                    # flushed again between redis-py's reload and its retry: send the source itself
                    raw = self.client.eval(script.script, len(keys), *keys, *argv)
        except RedisError as exc:
            if _is_outage(exc):
                raise Unavailable("The queue store is unavailable.") from exc
            log.error("queue script %s failed: %s", name, exc)
            raise QueueScriptError() from exc
        finally:
            if self.on_call is not None:
                self.on_call(name, time.perf_counter() - started)
        data = json.loads(raw)
        snap = Snapshot.from_dict(data)
        self._observe(snap, as_owner)
        return snap, data

    def _replicated(self, name: str, script: Any, keys: list[str], argv: list[Any]) -> Any:
        """Run the script and ``WAIT`` on the same connection (one round trip): its reply is used
        once the replicas hold the write, so a failover cannot undo what a client was told.

        Too few confirmations do not fail the call (the primary keeps serving while a replica
        is away) but are counted and logged; ``min-replicas-to-write`` on the primary is the
        setting that refuses writes no replica can see (docs/scaling.md)."""
        node = node_for(self.client, keys[0])
        for attempt in (1, 2):
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *argv)
            pipe.execute_command("WAIT", self.replicas, self.replica_timeout_ms)
            raw, acked = pipe.execute(raise_on_error=False)
            if isinstance(raw, NoScriptError) and attempt == 1:
                node.script_load(script.script)  # a new or restarted primary: load, then run once
                continue
            if isinstance(raw, ResponseError) and str(raw).startswith("MOVED") and attempt == 1:
                refresh(self.client)  # the slot moved (resharding, failover): nothing ran; go there
                node = node_for(self.client, keys[0])
                continue
            if isinstance(raw, Exception):
                raise raw
            break
        if isinstance(acked, int) and acked < self.replicas:
            self.unreplicated += 1
            now = time.monotonic()
            if now - self._warned_at >= UNREPLICATED_LOG_EVERY:
                self._warned_at = now
                log.warning("queue write (%s) confirmed by %s of %d replicas in %d ms (%d so far)",
                            name, acked, self.replicas, self.replica_timeout_ms, self.unreplicated)
        return raw

    def _observe(self, snap: Snapshot, held: bool) -> None:
        if held:
            if snap.rebind and self._known:
                self.rebinds += 1
            self._known = True
        stored = snap.settings
        if stored is None or stored == self.settings:
            return
        changes = (self.settings if self._told else self.seed).differences(stored)
        if not self._told:  # the queue's settings rule (changed live, or seeded by another process)
            log.info("queue %r follows its own settings, not this process's: %s", self.keys.queue,
                        ", ".join(f"{k}={v[1]} (started with {v[0]})" for k, v in changes.items()))
        else:
            log.info("queue %r settings changed: %s", self.keys.queue,
                     ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items()))
        self._told = True
        self.settings = stored

    def join(
        self, token_id: str, file_id: int, size: int, expires_at: float, client_addr: str = "",
        streamed: bool = False, holder: str = "", release_at: float = 0,
    ) -> Snapshot:
        """Join the line or re-attach to this token's place; admits the head when a slot is free.

        ``streamed``: a stream of this process keeps the waiter present (no presence deadline
        while this process lives); otherwise its presence lasts the wait grace, renewed by polls.
        ``holder``: the client the place counts against ('' exempt; ``services/holders.py``).
        ``release_at``: the file's scheduled release (seconds since the epoch; 0 none): before
        it, a newcomer waits in the file's pre-queue and is placed in a random order at it.
        """
        if len(holder) > HOLDER_MAX:
            raise ValueError("bad holder")
        _check_id(token_id, "token id")
        _check_count(file_id, "file id")
        _check_count(size, "file size")
        return self._run("join", token_id, file_id, size, _ms(expires_at, "token expiry"), client_addr[:CLIENT_MAX],
                         holder, _ms(release_at, "release time"), as_owner=streamed)

    def status(self, token_ids: list[str], mode: StatusMode = StatusMode.READ) -> Snapshot:
        """States and positions of at most ``MAX_STATUS_IDS`` tokens (the hub chunks by
        ``STATUS_CHUNK``); ``mode`` says what asking also does (``StatusMode``)."""
        mode = StatusMode(mode)
        if len(token_ids) > MAX_STATUS_IDS:
            raise ValueError(f"at most {MAX_STATUS_IDS} token ids per status call")
        for token_id in token_ids:
            _check_id(token_id, "token id")
        return self._run("status", mode.value, *token_ids, as_owner=mode == StatusMode.RESYNC)

    def unbind(self, token_id: str) -> Snapshot:
        """This process's stream of a waiter closed: its wait grace starts now."""
        return self._run("unbind", _check_id(token_id, "token id"))

    def leave(self, token_id: str) -> Snapshot:
        """Give back a place or a slot; the next waiter is admitted in the same step."""
        return self._run("leave", _check_id(token_id, "token id"), as_owner=False)

    def reap(self) -> Snapshot:
        """Reclaim what ran out and fill free slots; also this process's sign of life."""
        return self._run("reap")

    def start(self, token_id: str, conn_id: str, length: int = 0, first: int = 0) -> Snapshot:
        """Register a download connection asking for ``length`` bytes from ``first``; ``ok``
        means the slot is held, ``tail`` that a completed token may fetch them without one."""
        return self._run("start", _check_id(token_id, "token id"), _check_id(conn_id, "connection id"),
                         _check_count(length, "length"), _check_count(first, "first"))

    def progress(
        self, token_id: str, conn_id: str, first: int, end: int, delta: int,
        closing: bool = False, range_end: int | None = None, handed: bool = False, paced: bool = False,
    ) -> Snapshot:
        """One connection's report, now (``ProgressReport`` says what each argument means); the
        reply's ``state`` is its outcome."""
        report = ProgressReport(token_id, conn_id, first, end, delta, end if range_end is None else range_end,
                                closing, handed, paced)
        snap, states = self.report([report])
        snap.state = states[0]
        return snap

    def report(self, reports: Sequence[ProgressReport]) -> tuple[Snapshot, list[str]]:
        """Up to ``PROGRESS_BATCH`` connections' reports in one call: renews their leases, records
        what their clients have, completes downloads; also this process's sign of life and a
        reap. Returns the snapshot and each report's outcome (a ``Reply``), in order."""
        if not 1 <= len(reports) <= PROGRESS_BATCH:
            raise ValueError(f"1 to {PROGRESS_BATCH} reports per progress call")
        now = time.monotonic()
        snap, data = self._call("progress", len(reports), *(arg for r in reports for arg in r.args(now)))
        return snap, list(data["states"])

    def release(self, draws: int = RELEASE_BATCH) -> Snapshot:
        """Take the next step of a due release: up to ``draws`` pre-queued waiters drawn with
        this process's cryptographic randomness and placed in the line (``due``: call again)."""
        randoms = [secrets.randbelow(2**DRAW_BITS) for _ in range(min(draws, RELEASE_BATCH))]
        return self._run("release", 0, 0, *randoms, as_owner=False)

    def reschedule(self, file_id: int, release_at: float | None) -> Snapshot:
        """Move a file's release (None: release now); one that has started is not moved."""
        _check_count(file_id, "file id")
        return self._run("release", file_id, 0 if release_at is None else _ms(release_at, "release time") or 1,
                         as_owner=False)

    def summary(self) -> Snapshot:
        return self._run("summary", as_owner=False)

    def configure(self, **changes: Any) -> Snapshot:
        """Change the queue's rules for every process (``QueueSettings`` names, seconds)."""
        if not changes:
            raise ValueError("no queue setting to change")
        return self._run("configure", *stored_changes(**changes), as_owner=False)

    def remove(self, token_id: str) -> Snapshot:
        """Take a token out (waiting or downloading) for good; its slot goes to the next waiter."""
        return self._run("remove", _check_id(token_id, "token id"), as_owner=False)

    def inspect(self, limit: int = 0) -> Inspection:
        """The line, the running totals and up to ``limit`` (<= ``MAX_INSPECT``) running downloads."""
        if not (isinstance(limit, int) and 0 <= limit <= MAX_INSPECT):
            raise ValueError(f"at most {MAX_INSPECT} downloads per inspection")
        snap, data = self._call("inspect", limit, as_owner=False)
        downloads = [RunningDownload(**d) for d in data.get("downloads") or []]  # {} when none
        flat = data.get("stats") or []
        stats = {flat[n]: int(flat[n + 1]) for n in range(0, len(flat), 2)}
        top = data.get("holders") or []
        holders = [(top[n], int(top[n + 1])) for n in range(0, len(top), 2)]
        return Inspection(snap, stats, downloads, holders, int(data.get("clients") or 0))
