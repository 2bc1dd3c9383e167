"""The hub's position arithmetic (a pure class) against the truth in Redis (``ZRANK``).

Random joins, leaves and admissions run on a real queue; their replies are the events the
tracker sees, except the ones this test hides (missed events: a later event shows the gap, or
else the hub's resubscription starts it again from a snapshot). After every step each tracked
waiter, brought up to date (resynced when the tracker says it cannot know), must stand where
Redis says it stands."""
from __future__ import annotations

import time

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.queue.replies import Snapshot
from app.queue.states import HAS_SLOT
from app.queue.tracker import Change, PositionTracker, Waiter, WaiterState

from .helpers.env import REDIS_URL
from .helpers.queue import drop, new_engine

TOKENS = [f"w{i}" for i in range(12)]


class TrackerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.client = redis.Redis.from_url(REDIS_URL)
        self.engine = new_engine(self.client, capacity=2, wait_grace=3600, admit_timeout=3600)
        self.tracker = PositionTracker(history=8)
        self.tracker.reset(self.engine.summary())
        self.waiters: dict[str, Waiter] = {}
        self.missed_last = False

    def teardown(self) -> None:
        drop(self.engine)
        self.client.close()

    def _seen(self, snap: Snapshot, hidden: bool) -> None:
        """Feed the reply as the published event, or hide it (missed)."""
        if hidden:
            self.missed_last = True
            return
        self.missed_last = False  # a later event shows the gap
        self.tracker.observe(snap)
        for waiter in self.waiters.values():
            self.tracker.admitted_now(snap, waiter)

    @rule(tid=st.sampled_from(TOKENS), hidden=st.booleans())
    def join(self, tid: str, hidden: bool) -> None:
        snap = self.engine.join(tid, 1, 10, time.time() + 3600)
        self._seen(snap, hidden)
        if snap.state == "waiting" and tid not in self.waiters:
            self.waiters[tid] = Waiter(tid, snap.seq, snap.position, snap.version, snap.epoch, snap)

    @rule(tid=st.sampled_from(TOKENS), hidden=st.booleans())
    def leave(self, tid: str, hidden: bool) -> None:
        self._seen(self.engine.leave(tid), hidden)

    @invariant()
    def stands_where_redis_says(self) -> None:
        if self.missed_last:  # nothing followed to show the gap: the hub's resubscription does
            self.tracker.reset(self.engine.summary())
            self.missed_last = False
        stale = [w for w in self.waiters.values() if self.tracker.catch_up(w) == Change.STALE]
        if stale:
            snap = self.engine.status([w.token_id for w in stale])
            for waiter in stale:
                self.tracker.settle(waiter, snap.tokens[waiter.token_id], snap)
        line = self.client.zrange(self.engine.keys.waiting, 0, -1, withscores=True)
        ranks = {tid.decode(): n + 1 for n, (tid, _seq) in enumerate(line)}
        truth = self.engine.status(list(self.waiters)).tokens if self.waiters else {}
        for tid, waiter in list(self.waiters.items()):
            if waiter.state == WaiterState.WAITING:
                # ``GONE`` and ``READY`` are final: a gone token may join again as a new waiter
                assert waiter.position == ranks.get(tid), (tid, waiter.position, ranks.get(tid))
            elif waiter.state == WaiterState.READY:
                assert truth[tid].state in HAS_SLOT or truth[tid].state == "none", (tid, truth[tid])
                del self.waiters[tid]
            else:
                assert tid not in ranks or int(dict(line)[tid.encode()]) != waiter.seq
                del self.waiters[tid]


TrackerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestTracker = TrackerMachine.TestCase
