"""How long until a place in line is admitted, worked out from one snapshot (no I/O).

The head of the line takes the first slot to free: each running download ends when its remaining
bytes are sent at its recent throughput (``slots``). Behind it, two guesses that miss in opposite
directions are averaged: the admission rate as of now (it counts admissions into free slots as
turnover and lags a line that slows down), and the slots turning over, each freeing first at its
time in ``slots`` and then every download's duration. Within ``NEAR_TURNS`` turns of every slot
that duration is the mean of the average finished download (``cycle``: at first, the short ones
that finished first) and the expected one (``expected``: the running ones' projected wholes
counted too, which weighs the slow ones more, as they run longest); further back, the expected
one. A free slot in an open line means now; the rate and the slots count down between snapshots.
"""
from __future__ import annotations

import time

from .replies import Snapshot
from .states import QueueMode

# within this many turns of every slot, a slot turns over every (average + expected) / 2 download;
# further back, every expected download (bench/eta_bench.py: the lowest error at every band)
NEAR_TURNS = 2
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
    if known and ahead == 0:
        return round(min(frees))
    by_rate = (ahead + 1) / rate if rate > 0 else None
    turns = [t for t in ((snap.cycle, snap.expected) if ahead < NEAR_TURNS * len(frees) else (snap.expected,)) if t > 0]
    by_slots = free_at(frees, sum(turns) / len(turns), ahead) if known and turns else None
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
