"""The queue's rules. Stored in Redis (the one source of truth); the environment only seeds a
queue that has none, and every process follows what the queue says from then on."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .constants import BOUND, BOUNDS, MS
from .states import QueueMode


@dataclass(frozen=True)
class QueueSettings:
    """Every field but ``mode`` is a ``constants.BOUNDS`` entry (durations in seconds)."""

    capacity: int = int(BOUND["capacity"].default)
    max_queue_length: int = int(BOUND["max_queue_length"].default)
    admit_timeout: float = BOUND["admit_timeout"].default
    stall_timeout: float = BOUND["stall_timeout"].default
    resume_grace: float = BOUND["resume_grace"].default
    wait_grace: float = BOUND["wait_grace"].default
    max_connections_per_token: int = int(BOUND["max_connections_per_token"].default)
    resume_tail: int = int(BOUND["resume_tail"].default)
    egress_budget: int = int(BOUND["egress_budget"].default)  # bytes/s for the deployment; 0: none
    min_rate: int = int(BOUND["min_rate"].default)  # bytes/s: with a budget, the least a download gets
    max_places_per_client: int = int(BOUND["max_places_per_client"].default)  # 0: no cap
    away_grace: float = BOUND["away_grace"].default  # a waiter keeps its place away this long; 0: none
    mode: QueueMode = QueueMode.OPEN  # set by operators, never seeded

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> QueueSettings:
        """The seed from the app's config (``Bound.env`` names)."""
        return cls(**{bound.name: config[bound.env] for bound in BOUNDS})

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> QueueSettings:
        """The settings as the scripts store them (durations in ms)."""
        values: dict[str, Any] = {}
        for bound in BOUNDS:
            raw = stored.get(bound.stored)
            if raw is None:
                continue
            values[bound.name] = raw / MS if bound.seconds else int(raw)
        return cls(**values, mode=QueueMode(stored.get("mode") or QueueMode.OPEN))

    def seed_args(self) -> list[int]:
        """The seeded settings every script receives (ARGV[3..ARG], ``BOUNDS`` order)."""
        return [bound.to_stored(getattr(self, bound.name)) for bound in BOUNDS]

    def differences(self, other: QueueSettings) -> dict[str, tuple[Any, Any]]:
        mine, theirs = asdict(self), asdict(other)
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def stored_changes(**changes: Any) -> list[Any]:
    """``configure.lua``'s field/value pairs for changed settings (durations in seconds)."""
    pairs: list[Any] = []
    for name, value in changes.items():
        if name == "mode":
            pairs += ["mode", QueueMode(value).value]
        elif name in BOUND:
            pairs += [BOUND[name].stored, BOUND[name].to_stored(value)]
        else:
            raise ValueError(f"unknown queue setting: {name}")
    return pairs
