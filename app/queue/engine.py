"""The queue engine: every decision about the line is one atomic Lua script in Redis.

Python only checks and converts arguments and replies; there is no check-then-act here and no
state kept beside Redis. Leases use Redis server time, so hosts with skewed clocks agree. The
queue's rules (capacity, leases, graces) live in Redis with the queue: a process only seeds them
when the queue has none, and follows what the queue says from then on.
"""
from __future__ import annotations

import heapq
import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
from .keys import QueueKeys
from .scripts import QueueScripts
from .states import QueueMode, TokenState

log = logging.getLogger(__name__)

# an ETA within this many turns of every slot follows the slots; further back, the admission rate
# (bench/eta_bench.py: beyond about three turns the average duration is the weaker guess)
SIMULATED_TURNS = 3
MAX_INSPECT = 500  # running downloads one inspection describes
STATUS_CHUNK = 50  # token ids per status call: keeps each script call near a millisecond
MAX_STATUS_IDS = 1000  # status.lua refuses more
MAX_EXPIRY = 10**10  # seconds since the epoch (year 2286): any later expiry is a bad argument
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


@dataclass(frozen=True)
class QueueSettings:
    """The queue's rules. Stored in Redis; the environment only seeds a queue that has none."""

    capacity: int = 4
    max_queue_length: int = 100_000
    admit_timeout: float = 60.0
    stall_timeout: float = 30.0
    resume_grace: float = 120.0
    wait_grace: float = 30.0
    max_connections_per_token: int = 4
    resume_tail: int = 32 << 20
    egress_budget: int = 0  # bytes/s for the whole deployment; 0: admit by capacity alone
    min_rate: int = 1 << 20  # bytes/s: with a budget, admit only while another download gets this
    mode: QueueMode = QueueMode.OPEN  # set by operators, never seeded

    @classmethod
    def from_config(cls, config: Any) -> QueueSettings:
        return cls(
            capacity=config["QUEUE_CAPACITY"],
            max_queue_length=config["MAX_QUEUE_LENGTH"],
            admit_timeout=config["ADMIT_TIMEOUT"],
            stall_timeout=config["STALL_TIMEOUT"],
            resume_grace=config["RESUME_GRACE"],
            wait_grace=config["WAIT_GRACE"],
            max_connections_per_token=config["MAX_CONNECTIONS_PER_TOKEN"],
            resume_tail=config["RESUME_TAIL"],
            egress_budget=config["EGRESS_BUDGET"],
            min_rate=config["MIN_RATE"],
        )

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> QueueSettings:
        """The settings as the scripts store them (durations in ms)."""
        return cls(
            capacity=int(stored["capacity"]),
            max_queue_length=int(stored["max_queue_length"]),
            admit_timeout=stored["admit_ms"] / 1000,
            stall_timeout=stored["stall_ms"] / 1000,
            resume_grace=stored["resume_ms"] / 1000,
            wait_grace=stored["wait_ms"] / 1000,
            max_connections_per_token=int(stored["max_connections"]),
            resume_tail=int(stored["resume_tail"]),
            egress_budget=int(stored.get("egress_budget") or 0),
            min_rate=int(stored.get("min_rate") or cls.min_rate),
            mode=QueueMode(stored.get("mode") or QueueMode.OPEN),
        )

    def stored_changes(self, **changes: Any) -> list[Any]:
        """``configure.lua``'s field/value pairs for changed settings (durations in seconds)."""
        pairs: list[Any] = []
        for name, value in changes.items():
            if name not in STORED_FIELDS:
                raise ValueError(f"unknown queue setting: {name}")
            stored, to_stored = STORED_FIELDS[name]
            pairs += [stored, to_stored(value)]
        return pairs

    def seed_args(self) -> list[int]:
        """ARGV[3..ARG] of every script, in lib.lua's order."""
        return [
            self.capacity, self.max_queue_length, _ms(self.admit_timeout), _ms(self.stall_timeout),
            _ms(self.resume_grace), _ms(self.wait_grace), self.max_connections_per_token,
            self.resume_tail, self.egress_budget, self.min_rate,
        ]

    def differences(self, other: QueueSettings) -> dict[str, tuple[Any, Any]]:
        mine, theirs = asdict(self), asdict(other)
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


@dataclass(frozen=True)
class TokenView:
    """One token as ``status`` sees it."""

    state: TokenState
    position: int = 0
    lease: int = 0
    bytes: int = 0  # acknowledged by the client so far (admitted tokens)
    size: int = 0


@dataclass
class Snapshot:
    """The reply of a script: the line's figures plus the asking token's view."""

    now: int
    waiting: int
    active: int
    capacity: int
    rate: float
    version: int
    epoch: int = 0
    mode: QueueMode = QueueMode.OPEN
    rate_span: float = 0.0  # seconds the rate was measured over, up to ``now``
    slots: list[float] = field(default_factory=list)  # seconds until each slot frees (-1: unknown)
    cycle: float = -1.0  # a download's average duration in seconds (-1: unknown)
    seen_at: float = field(default_factory=time.monotonic)  # when this process got it
    state: str | None = None
    position: int | None = None
    seq: int | None = None
    admitted: list[str] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    tokens: dict[str, TokenView] = field(default_factory=dict)
    settings: QueueSettings | None = None
    rebind: bool = False
    more: bool = False  # reclaiming stopped at its per-call budget: call again
    joined: bool = False  # this join made a new place in line
    egress: float | None = None  # with a budget: bytes/s the running downloads deliver now
    limit: int | None = None  # with a budget: downloads it allows to run now (<= capacity)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        tokens = data.get("tokens") or {}
        stored = data.get("settings")
        return cls(
            now=int(data["now"]),
            waiting=int(data["waiting"]),
            active=int(data["active"]),
            capacity=int(data["capacity"]),
            rate=float(data["rate"]),
            version=int(data["version"]),
            epoch=int(data.get("epoch") or 0),
            mode=QueueMode(data.get("mode") or QueueMode.OPEN),
            rate_span=float(data.get("rate_span") or 0),
            slots=[float(x) for x in data.get("slots") or []],
            cycle=float(data.get("cycle", -1)),
            state=data.get("state"),
            position=data.get("position"),
            seq=data.get("seq"),
            admitted=list(data.get("admitted") or []),
            removed=[int(s) for s in data.get("removed") or []],
            tokens={k: TokenView(TokenState(v[0]), *(int(n) for n in v[1:5])) for k, v in tokens.items()},
            settings=QueueSettings.from_stored(stored) if stored else None,
            rebind=bool(data.get("rebind")),
            more=bool(data.get("more")),
            joined=bool(data.get("joined")),
            egress=None if data.get("egress") is None else float(data["egress"]),
            limit=None if data.get("limit") is None else int(data["limit"]),
        )

    def eta_seconds(self, position: int | None = None) -> int | None:
        """Seconds until ``position`` is admitted, as of now; None only when nothing is known.

        Near the front (``SIMULATED_TURNS`` turns of each slot), the slots are followed one by one: each running
        download ends when its remaining bytes at its recent throughput are sent (``slots``),
        then its slot turns over every average download (``cycle``), and this place takes the
        (n+1)-th slot to free. Further back, the admission rate as of now decides. A free slot
        in an open line means now; the rate and the slots count down between snapshots."""
        position = self.position if position is None else position
        if position is None:
            return None
        free = self.allowed - self.active if self.mode != QueueMode.PAUSED else 0
        ahead = position - 1 - max(0, free)  # slots that must free before this place's turn
        if position <= 0 or ahead < 0:
            return 0
        age = time.monotonic() - self.seen_at
        # the admission rate as of now: a silence since the snapshot lowers it
        rate = self.rate * self.rate_span / (self.rate_span + age) if self.rate_span > 0 else self.rate
        slots = sorted(self.slots) if self.slots and min(self.slots) >= 0 else []
        if slots and (ahead < len(slots) or (self.cycle > 0 and ahead < SIMULATED_TURNS * len(slots))):
            # the (ahead+1)-th slot to free: each running download ends, then its slot turns over
            # every average download; a slot overdue by now frees any moment (at least 1 s)
            turn = self.cycle if self.cycle > 0 else math.inf
            frees = [max(1.0, left - age) for left in slots]
            heapq.heapify(frees)
            for _ in range(ahead):
                heapq.heapreplace(frees, frees[0] + turn)
            return round(frees[0])
        if rate > 0:
            return round((ahead + 1) / rate)
        if self.cycle > 0:
            return round(self.cycle * (ahead // max(1, self.allowed) + 1))
        return None

    @property
    def allowed(self) -> int:
        """Downloads that may run now: the capacity, or fewer while the egress budget is full."""
        return self.capacity if self.limit is None else min(self.capacity, self.limit)


@dataclass(frozen=True)
class RunningDownload:
    """An admitted token as ``inspect`` describes it (times in ms, Redis time; 0: not yet)."""

    id: str
    state: str
    file: int
    client: str
    bytes: int
    size: int
    joined: int
    admitted: int
    started: int
    lease: int
    connections: int


@dataclass(frozen=True)
class Inspection:
    """What an operator sees: the line, the queue's running totals, its running downloads."""

    snap: Snapshot
    stats: dict[str, int]
    downloads: list[RunningDownload]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# attribute -> (field in the settings hash, conversion)
STORED_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "capacity": ("capacity", int),
    "max_queue_length": ("max_queue_length", int),
    "admit_timeout": ("admit_ms", _ms),
    "stall_timeout": ("stall_ms", _ms),
    "resume_grace": ("resume_ms", _ms),
    "wait_grace": ("wait_ms", _ms),
    "max_connections_per_token": ("max_connections", int),
    "resume_tail": ("resume_tail", int),
    "egress_budget": ("egress_budget", int),
    "min_rate": ("min_rate", int),
    "mode": ("mode", lambda value: QueueMode(value).value),
}


def new_owner() -> str:
    """A name for this process in the queue; a process that stops renewing it is dead."""
    host = socket.gethostname().replace("|", "_")[:40]
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 128 or "|" in value:
        raise ValueError(f"bad {what}")  # never the value: it may be a token's id
    return value


def _check_count(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
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

    def _run(self, name: str, *args: Any, hold: bool = True) -> Snapshot:
        """Run a script as this process (``hold``: what it binds, this process holds) or as nobody."""
        snap, _ = self._call(name, *args, hold=hold)
        return snap

    def _call(self, name: str, *args: Any, hold: bool = True) -> tuple[Snapshot, dict[str, Any]]:
        """The script's reply as a snapshot and as the JSON it was parsed from."""
        common = self._common if hold else [self._common[0], "", *self._common[2:]]
        script = getattr(self.scripts, name)
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
        self._observe(snap, hold)
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
        if not self._told:
            log.warning("queue %r follows its own settings, not this process's: %s", self.keys.queue,
                        ", ".join(f"{k}={v[1]} (started with {v[0]})" for k, v in changes.items()))
        else:
            log.info("queue %r settings changed: %s", self.keys.queue,
                     ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items()))
        self._told = True
        self.settings = stored

    def join(
        self, token_id: str, file_id: int, size: int, expires_at: float, client_addr: str = "",
        hold: bool = False,
    ) -> Snapshot:
        """Join the line or re-attach to this token's place; admits the head when a slot is free.

        ``hold``: a stream of this process holds the waiter (no presence deadline while it lives).
        """
        _check_id(token_id, "token id")
        _check_count(file_id, "file id")
        _check_count(size, "file size")
        if not (isinstance(expires_at, int | float) and math.isfinite(expires_at)
                and 0 <= expires_at < MAX_EXPIRY):
            raise ValueError(f"bad token expiry: {expires_at!r}")
        return self._run("join", token_id, file_id, size, _ms(expires_at), client_addr[:64], hold=hold)

    def status(self, token_ids: list[str], mode: str = "read") -> Snapshot:
        """States and positions of at most 1,000 tokens (callers chunk by ``STATUS_CHUNK``).

        ``mode``: ``read``; ``renew`` (a poll counts as being seen); ``hold`` (this process's
        streams hold the waiters among them: a resync)."""
        if mode not in ("read", "renew", "hold"):
            raise ValueError(f"bad status mode: {mode!r}")
        if len(token_ids) > MAX_STATUS_IDS:
            raise ValueError(f"at most {MAX_STATUS_IDS} token ids per status call")
        for token_id in token_ids:
            _check_id(token_id, "token id")
        return self._run("status", mode, *token_ids, hold=mode == "hold")

    def unbind(self, token_id: str) -> Snapshot:
        """This process's stream of a waiter closed: its wait grace starts now."""
        return self._run("unbind", _check_id(token_id, "token id"))

    def leave(self, token_id: str) -> Snapshot:
        """Give back a place or a slot; the next waiter is admitted in the same step."""
        return self._run("leave", _check_id(token_id, "token id"), hold=False)

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
        """Report bytes the client acknowledged on a connection (``[first, end)`` so far, of a
        request for ``[first, range_end)``): renews the lease and completes the download.

        ``handed``: every byte of the range is in the kernel's hands (it delivers them even if
        this process dies). ``paced``: the host's bandwidth share held the connection back, so
        its throughput says what it was given, not what its client could take."""
        range_end = end if range_end is None else range_end
        for value, what in ((first, "first"), (end, "end"), (delta, "delta"), (range_end, "range end")):
            _check_count(value, what)
        if not first <= end <= range_end:
            raise ValueError(f"bad progress range: {first} <= {end} <= {range_end}")
        return self._run("progress", _check_id(token_id, "token id"), _check_id(conn_id, "connection id"),
                         first, end, delta, range_end, 1 if closing else 0, 1 if handed else 0,
                         1 if paced else 0)

    def summary(self) -> Snapshot:
        return self._run("summary", hold=False)

    def configure(self, **changes: Any) -> Snapshot:
        """Change the queue's rules for every process (``QueueSettings`` names, seconds)."""
        if not changes:
            raise ValueError("no queue setting to change")
        return self._run("configure", *self.settings.stored_changes(**changes), hold=False)

    def remove(self, token_id: str) -> Snapshot:
        """Take a token out (waiting or downloading) for good; its slot goes to the next waiter."""
        return self._run("remove", _check_id(token_id, "token id"), hold=False)

    def inspect(self, limit: int = 0) -> Inspection:
        """The line, the running totals and up to ``limit`` (<= 500) running downloads."""
        if not (isinstance(limit, int) and 0 <= limit <= MAX_INSPECT):
            raise ValueError(f"at most {MAX_INSPECT} downloads per inspection")
        snap, data = self._call("inspect", limit, hold=False)
        downloads = [RunningDownload(**d) for d in data.get("downloads") or []]  # {} when none
        flat = data.get("stats") or []
        stats = {flat[n]: int(flat[n + 1]) for n in range(0, len(flat), 2)}
        return Inspection(snap, stats, downloads)
