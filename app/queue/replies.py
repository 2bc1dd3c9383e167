"""The scripts' JSON replies as typed values: the line's snapshot and the tokens' views."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .settings import QueueSettings
from .states import QueueMode, TokenState


@dataclass(frozen=True)
class TokenView:
    """One token as ``status`` sees it."""

    state: TokenState
    position: int = 0
    lease: int = 0
    bytes: int = 0  # acknowledged by the client so far (admitted tokens)
    size: int = 0
    seq: int = 0  # its join number while waiting (0: pre-queued for a release)
    rate: int = 0  # bytes/s its download is measured at, as its slot is timed (0: not yet)


# what a reply says about the whole line (not about the token that asked)
LINE_FIGURES = ("now", "waiting", "active", "capacity", "rate", "mode", "rate_span", "slots", "cycle", "expected", "seen_at",
                "settings", "egress", "limit", "prequeued", "away")


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
    expected: float = -1.0  # the same counting the running downloads' projected wholes too
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
    places: int | None = None  # a join refused as too_many_places: the places its client holds
    prequeued: int = 0  # waiters in the pre-queues of scheduled releases (every file)
    away: int = 0  # waiters whose presence stopped: keeping their places, not admitted meanwhile
    release_at: int | None = None  # a pre-queued join: the release time (ms) of its file
    added: list[int] = field(default_factory=list)  # join numbers a release placed in the line
    placed: list[tuple[str, int]] = field(default_factory=list)  # (token id, join number) it placed
    due: bool = False  # a scheduled release is due: call ``release``
    drawn: int = 0  # a release call: waiters it placed
    left: int = 0  # a release call: waiters of its release still to place
    releases: list[tuple[int, int, int]] = field(default_factory=list)  # (file, at ms, pre-queued)

    def absorb(self, newer: Snapshot) -> None:
        """Take the line's figures of a newer reply at the same version (a join publishes
        nothing), so the waiters sharing this snapshot see them without each keeping its own."""
        for name in LINE_FIGURES:
            setattr(self, name, getattr(newer, name))

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
            expected=float(data.get("expected", -1)),
            state=data.get("state"),
            position=data.get("position"),
            seq=data.get("seq"),
            admitted=list(data.get("admitted") or []),
            removed=[int(s) for s in data.get("removed") or []],
            tokens={k: TokenView(TokenState(v[0]), *(int(n) for n in v[1:7])) for k, v in tokens.items()},
            settings=QueueSettings.from_stored(stored) if stored else None,
            rebind=bool(data.get("rebind")),
            more=bool(data.get("more")),
            joined=bool(data.get("joined")),
            egress=None if data.get("egress") is None else float(data["egress"]),
            limit=None if data.get("limit") is None else int(data["limit"]),
            places=None if data.get("places") is None else int(data["places"]),
            prequeued=int(data.get("prequeued") or 0),
            away=int(data.get("away") or 0),
            release_at=None if data.get("release_at") is None else int(data["release_at"]),
            added=[int(s) for s in data.get("added") or []],
            placed=[(str(p[0]), int(p[1])) for p in data.get("placed") or []],
            due=bool(data.get("due")),
            drawn=int(data.get("drawn") or 0),
            left=int(data.get("left") or 0),
            releases=[(int(r[0]), int(r[1]), int(r[2])) for r in data.get("releases") or []],
        )

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
    holders: list[tuple[str, int]]  # the clients holding the most places, most first
    clients: int  # clients holding a place
