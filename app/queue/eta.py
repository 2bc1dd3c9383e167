"""How long until a place in line is admitted, worked out from one snapshot (no I/O).

Near the front (``SIMULATED_TURNS`` turns of each slot), the slots are followed one by one: each
running download ends when its remaining bytes at its recent throughput are sent (``slots``),
then its slot turns over every average download (``cycle``), and the place takes the (n+1)-th
slot to free. Further back, the admission rate as of now and the slots turning over every
expected download (``expected``, counting the running ones) each guess, and the ETA is their
mean. A free slot in an open line means now; the rate and the slots count down between
snapshots.
"""
from __future__ import annotations

import time

from .replies import Snapshot
from .states import QueueMode

# within this many turns of every slot the ETA follows the slots (each turning over every average
# download); further back it is the mean of the admission rate's guess and the slots' turning
# over every expected download (bench/eta_bench.py)
SIMULATED_TURNS = 3
BISECTIONS = 40  # a free behind a download far longer than the others: found to turn / 2**40


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
    known = bool(snap.slots) and min(snap.slots) >= 0
    frees = [max(1.0, left - age) for left in snap.slots] if known else []  # overdue: any moment
    if known and (ahead < len(frees) or (snap.cycle > 0 and ahead < SIMULATED_TURNS * len(frees))):
        return round(free_at(frees, snap.cycle, ahead))
    by_rate = (ahead + 1) / rate if rate > 0 else None
    by_slots = free_at(frees, snap.expected, ahead) if known and snap.expected > 0 else None
    # further back both are long shots that miss in opposite directions: the rate counts
    # admissions into free slots as turnover and lags a line that slows down, the slots' turnover
    # knows only the first downloads' lengths; their mean beats either
    guesses = [g for g in (by_rate, by_slots) if g is not None]
    if guesses:
        return round(sum(guesses) / len(guesses))
    if snap.cycle > 0:
        return round(snap.cycle * (ahead // max(1, snap.allowed) + 1))
    return None


def free_at(frees: list[float], turn: float, n: int) -> float:
    """When the (n+1)-th slot frees, each slot freeing first at its time in ``frees`` and then
    every ``turn`` seconds (a download's expected duration; <= 0: unknown, so only the first
    frees count). Exact, and costs the slots, not the place: a waiter 50,000 back is as cheap
    as the first."""
    if turn <= 0:
        return sorted(frees)[n]
    last = max(frees)
    before = sum(int((last - f) // turn) + 1 for f in frees)  # frees up to the latest first one
    if n >= before:  # from there on every slot frees once per turn, in the same order
        after = sorted(f + ((last - f) // turn + 1) * turn for f in frees)
        r = n - before
        return after[r % len(after)] + r // len(after) * turn
    low, high = min(frees), last  # behind a long download: the time the (n+1)-th free comes by
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        if sum(int((mid - f) // turn) + 1 for f in frees if f <= mid) > n:
            high = mid
        else:
            low = mid
    return high


def newcomer_eta(snap: Snapshot) -> int | None:
    """The wait of someone joining now (unknown while the line is paused: no one is admitted)."""
    if snap.mode == QueueMode.PAUSED:
        return None
    return eta_seconds(snap, snap.waiting + 1)
