"""The ETA from one snapshot: the slots near the front, the rate and the slots further back."""
from __future__ import annotations

import heapq
import random

import pytest

from app.queue.eta import NEAR_TURNS, eta_seconds, free_at, newcomer_eta
from app.queue.replies import Snapshot
from app.queue.states import QueueMode


def snapshot(**figures) -> Snapshot:
    base = dict(now=0, waiting=1, active=1, capacity=1, rate=0.0, version=1)
    return Snapshot(**{**base, **figures})


def test_the_slots_near_the_front_count_down_between_events():
    snap = snapshot(slots=[30.0], cycle=40.0)
    assert eta_seconds(snap, 1) == 30 and eta_seconds(snap, 2) == 70
    later = snap.seen_at + 12  # received 12 s ago, nothing changed since
    assert eta_seconds(snap, 1, now=later) == 18 and eta_seconds(snap, 2, now=later) == 58
    assert eta_seconds(snap, 1, now=snap.seen_at + 72) == 1  # overdue: any moment, not "now"


def test_further_back_the_rate_decides_and_a_silence_lowers_it():
    paced = snapshot(waiting=5, rate=0.5, rate_span=10)
    assert eta_seconds(paced, 5) == 10
    assert eta_seconds(paced, 5, now=paced.seen_at + 10) == 20  # no admission for 10 more seconds
    far = snapshot(waiting=500, slots=[10.0], cycle=20.0, rate=0.1, rate_span=100)
    assert eta_seconds(far, NEAR_TURNS + 1) == round((NEAR_TURNS + 1) / 0.1)


def test_behind_the_head_the_rate_and_the_slots_each_guess_and_the_eta_is_their_mean():
    line = snapshot(waiting=500, slots=[10.0], cycle=20.0, expected=32.0, rate=0.1, rate_span=100)
    assert eta_seconds(line, 1) == 10  # the head: the first slot to free, whatever the rate says
    # near: the slot frees at 10, then every (20 + 32) / 2 s
    assert eta_seconds(line, 2) == (2 / 0.1 + 10 + 26) / 2
    place = NEAR_TURNS + 1  # further back: then every expected download (32 s)
    assert eta_seconds(line, place) == (place / 0.1 + 10 + (place - 1) * 32) / 2
    no_rate = snapshot(waiting=500, slots=[10.0], cycle=20.0, expected=30.0)
    assert eta_seconds(no_rate, 1000) == 10 + 999 * 30


def test_the_nth_free_slot_in_closed_form_is_the_one_a_heap_finds():
    rng = random.Random(7)
    for _ in range(300):
        frees = [rng.uniform(1, 400) for _ in range(rng.randint(1, 16))]
        turn, n = rng.uniform(1, 60), rng.randint(0, 400)
        heap = list(frees)
        heapq.heapify(heap)
        for _ in range(n):
            heapq.heapreplace(heap, heap[0] + turn)
        assert free_at(frees, turn, n) == pytest.approx(heap[0], abs=1e-6)
    assert free_at([5.0, 2.0], -1, 1) == 5.0  # no turnover known: only the first frees


def test_a_free_slot_is_now_unless_the_line_is_paused_or_the_budget_full():
    free = snapshot(waiting=0, active=0, capacity=2, slots=[5.0], cycle=5.0)
    assert eta_seconds(free, 1) == 0 and newcomer_eta(free) == 0
    assert eta_seconds(snapshot(active=0, mode=QueueMode.PAUSED, cycle=8.0), 1) == 8
    assert eta_seconds(snapshot(active=1, capacity=4, limit=1, cycle=6.0), 1) == 6  # budget: 1 may run


def test_nothing_known_is_none_and_no_place_is_none():
    assert eta_seconds(snapshot(), 1) is None
    assert eta_seconds(snapshot(cycle=10.0), None) is None
