"""How long until a place in line is admitted, worked out from one snapshot (no I/O).

Near the front (``SIMULATED_TURNS`` turns of each slot), the slots are followed one by one: each
running download ends when its remaining bytes at its recent throughput are sent (``slots``),
then its slot turns over every average download (``cycle``), and the place takes the (n+1)-th
slot to free. Further back, the admission rate as of now decides. A free slot in an open line
means now; the rate and the slots count down between snapshots.
"""
from __future__ import annotations

import heapq
import math
import time

from .replies import Snapshot
from .states import QueueMode

# within this many turns of every slot the ETA follows the slots; further back, the admission rate
# (bench/eta_bench.py: beyond about three turns the average duration is the weaker guess)
SIMULATED_TURNS = 3


def eta_seconds(snap: Snapshot, position: int | None, now: float | None = None) -> int | None:
    """Seconds until ``position`` is admitted as of ``now`` (``time.monotonic()``); None only
    when nothing is known."""
    if position is None:
        return None
    free = snap.allowed - snap.active if snap.mode != QueueMode.PAUSED else 0
    ahead = position - 1 - max(0, free)  # slots that must free before this place's turn
    if position <= 0 or ahead < 0:
        return 0
    age = (time.monotonic() if now is None else now) - snap.seen_at
    # the admission rate as of now: a silence since the snapshot lowers it
    rate = snap.rate * snap.rate_span / (snap.rate_span + age) if snap.rate_span > 0 else snap.rate
    slots = sorted(snap.slots) if snap.slots and min(snap.slots) >= 0 else []
    if slots and (ahead < len(slots) or (snap.cycle > 0 and ahead < SIMULATED_TURNS * len(slots))):
        # the (ahead+1)-th slot to free: each running download ends, then its slot turns over
        # every average download; a slot overdue by now frees any moment (at least 1 s)
        turn = snap.cycle if snap.cycle > 0 else math.inf
        frees = [max(1.0, left - age) for left in slots]
        heapq.heapify(frees)
        for _ in range(ahead):
            heapq.heapreplace(frees, frees[0] + turn)
        return round(frees[0])
    if rate > 0:
        return round((ahead + 1) / rate)
    if snap.cycle > 0:
        return round(snap.cycle * (ahead // max(1, snap.allowed) + 1))
    return None


def newcomer_eta(snap: Snapshot) -> int | None:
    """The wait of someone joining now (unknown while the line is paused: no one is admitted)."""
    if snap.mode == QueueMode.PAUSED:
        return None
    return eta_seconds(snap, snap.waiting + 1)
