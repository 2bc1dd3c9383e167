"""A download connection's progress report, as a process keeps it until its next queue call."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from .constants import MAX_INT, REPORT_AGE_MAX, is_id


@dataclass(frozen=True)
class ProgressReport:
    """What the client of one connection acknowledged: ``[first, end)`` so far of a request for
    ``[first, range_end)``, ``delta`` of it since the last report the queue heard.

    ``handed``: every byte of the range is in the kernel's hands (it delivers them even if this
    process dies). ``paced``: the host's bandwidth share held the connection back, so its
    throughput says what it was given, not what its client could take. ``measured``: when it was
    true (``time.monotonic``), so the queue measures the throughput at that time."""

    token_id: str
    conn_id: str
    first: int
    end: int
    delta: int
    range_end: int
    closing: bool = False
    handed: bool = False
    paced: bool = False
    measured: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        for value, what in ((self.token_id, "token id"), (self.conn_id, "connection id")):
            if not is_id(value):
                raise ValueError(f"bad {what}")  # never the value: it may be a token's id
        for value, what in ((self.first, "first"), (self.end, "end"), (self.delta, "delta"),
                            (self.range_end, "range end")):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
                raise ValueError(f"bad {what}: {value!r}")
        if not self.first <= self.end <= self.range_end:
            raise ValueError(f"bad progress range: {self.first} <= {self.end} <= {self.range_end}")

    def then(self, newer: ProgressReport) -> ProgressReport:
        """This report and a newer one of the same connection as one (the queue heard neither)."""
        return replace(newer, delta=self.delta + newer.delta, handed=self.handed or newer.handed)

    def args(self, now: float) -> list[int | str]:
        """The script's arguments for this report (progress.lua), sent at ``now`` (monotonic)."""
        age = min(REPORT_AGE_MAX, max(0, round((now - self.measured) * 1000)))
        return [self.token_id, self.conn_id, self.first, self.end, self.delta, self.range_end,
                int(self.closing), int(self.handed), int(self.paced), age]
