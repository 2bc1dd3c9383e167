"""The queue engine: every decision about the line is one atomic Lua script in Redis.

Python only converts arguments and replies; there is no check-then-act here and no state
kept beside Redis. Leases use Redis server time, so hosts with skewed clocks agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from ..errors import Unavailable
from .keys import QueueKeys
from .scripts import QueueScripts


@dataclass(frozen=True)
class QueueSettings:
    capacity: int = 4
    admit_timeout: float = 60.0
    stall_timeout: float = 30.0
    resume_grace: float = 120.0
    wait_grace: float = 30.0
    max_queue_length: int = 100_000
    max_connections_per_token: int = 4

    @classmethod
    def from_config(cls, config: Any) -> QueueSettings:
        return cls(
            capacity=config["QUEUE_CAPACITY"],
            admit_timeout=config["ADMIT_TIMEOUT"],
            stall_timeout=config["STALL_TIMEOUT"],
            resume_grace=config["RESUME_GRACE"],
            wait_grace=config["WAIT_GRACE"],
            max_queue_length=config["MAX_QUEUE_LENGTH"],
            max_connections_per_token=config["MAX_CONNECTIONS_PER_TOKEN"],
        )


@dataclass
class Snapshot:
    """The reply of a script: the line's figures plus the asking token's view."""

    now: int
    waiting: int
    active: int
    capacity: int
    rate: float
    version: int
    drain: float = -1.0
    state: str | None = None
    position: int | None = None
    seq: int | None = None
    admitted: list[str] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    tokens: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes | str) -> Snapshot:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            now=int(data["now"]),
            waiting=int(data["waiting"]),
            active=int(data["active"]),
            capacity=int(data["capacity"]),
            rate=float(data["rate"]),
            version=int(data["version"]),
            drain=float(data.get("drain", -1)),
            state=data.get("state"),
            position=data.get("position"),
            seq=data.get("seq"),
            admitted=list(data.get("admitted") or []),
            removed=[int(s) for s in data.get("removed") or []],
            tokens=dict(data.get("tokens") or {}),
        )

    def eta_seconds(self, position: int | None = None) -> int | None:
        """Seconds until ``position`` is admitted: from the admission rate, else from the bytes
        the running downloads still have to send (``drain``: seconds until the first finishes)."""
        position = self.position if position is None else position
        if position is None:
            return None
        if position <= 0:
            return 0
        if self.rate > 0:
            return int(round(position / self.rate))
        if self.drain >= 0:
            return int(round(self.drain * -(-position // max(1, self.capacity))))
        return None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class QueueEngine:
    """Python API of one queue; safe to share across greenlets and threads of a process."""

    def __init__(self, client: Redis, name: str, settings: QueueSettings) -> None:
        self.client = client
        self.keys = QueueKeys(name)
        self.settings = settings
        self.scripts = QueueScripts(client)
        self._common = [
            self.keys.channel,
            settings.capacity,
            _ms(settings.admit_timeout),
            _ms(settings.resume_grace),
        ]

    def _run(self, script: Any, *args: Any) -> Any:
        try:
            return script(keys=self.keys.script_keys, args=[*self._common, *args])
        except RedisError as exc:
            raise Unavailable("The queue store is unavailable.") from exc

    def join(
        self, token_id: str, file_id: int, size: int, expires_at: float, client_addr: str = ""
    ) -> Snapshot:
        """Join the line or re-attach to this token's place; admits the head when a slot is free."""
        return Snapshot.parse(
            self._run(
                self.scripts.join,
                token_id,
                file_id,
                size,
                _ms(expires_at),
                _ms(self.settings.wait_grace),
                self.settings.max_queue_length,
                client_addr,
            )
        )

    def status(self, token_ids: list[str], renew_presence: bool = False) -> Snapshot:
        """States and positions of tokens; renewing presence makes it count as being seen."""
        grace = _ms(self.settings.wait_grace) if renew_presence else 0
        return Snapshot.parse(self._run(self.scripts.status, grace, *token_ids))

    def touch(self, token_ids: list[str], grace: float | None = None) -> Snapshot:
        """Renew waiters' presence for ``grace`` seconds (ids no longer waiting are ignored)."""
        grace = self.settings.wait_grace if grace is None else grace
        return Snapshot.parse(self._run(self.scripts.touch, _ms(grace), *token_ids))

    def leave(self, token_id: str) -> Snapshot:
        """Give back a place or a slot; the next waiter is admitted in the same step."""
        return Snapshot.parse(self._run(self.scripts.leave, token_id))

    def reap(self) -> Snapshot:
        """Reclaim expired leases and lapsed waiters, then fill free slots."""
        return Snapshot.parse(self._run(self.scripts.reap))

    def start(self, token_id: str, conn_id: str) -> Snapshot:
        """Register a download connection; state ``ok`` means the slot is held."""
        return Snapshot.parse(
            self._run(
                self.scripts.start,
                token_id,
                conn_id,
                self.settings.max_connections_per_token,
                _ms(self.settings.stall_timeout),
            )
        )

    def progress(
        self, token_id: str, conn_id: str, first: int, end: int, delta: int, closing: bool = False
    ) -> Snapshot:
        """Report bytes sent on a connection: renews the lease and completes the download."""
        return Snapshot.parse(
            self._run(
                self.scripts.progress,
                token_id,
                conn_id,
                first,
                end,
                delta,
                _ms(self.settings.stall_timeout),
                1 if closing else 0,
            )
        )

    def summary(self) -> Snapshot:
        return Snapshot.parse(self._run(self.scripts.summary))
