"""The hub's position arithmetic against a list model of the line (no Redis).

The model publishes what the scripts publish: the join numbers that left the line and the
tokens admitted. Some events are hidden (missed); a later event shows the gap, or else a fresh
subscription starts the tracker again from a snapshot. After every step each waiting waiter,
brought up to date (resynced when the tracker cannot know), must stand where the model says."""
from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.queue.replies import Snapshot, TokenView
from app.queue.states import TokenState
from app.queue.tracker import Change, PositionTracker, Waiter, WaiterState

TOKENS = [f"w{i}" for i in range(12)]
CAPACITY = 2


class LineModel:
    """A FIFO line with ``CAPACITY`` slots, as the scripts keep it."""

    def __init__(self) -> None:
        self.line: list[tuple[str, int]] = []
        self.slots: set[str] = set()
        self.seq = self.version = 0

    def _snap(self, changed: bool, removed: list[int], admitted: list[str], **fields) -> Snapshot:
        if changed:
            self.version += 1
        return Snapshot(now=0, waiting=len(self.line), active=len(self.slots), capacity=CAPACITY, rate=0,
                        version=self.version, epoch=1, removed=removed, admitted=admitted, **fields)

    def _fill(self, removed: list[int], admitted: list[str]) -> None:
        while self.line and len(self.slots) < CAPACITY:
            tid, seq = self.line.pop(0)
            self.slots.add(tid)
            removed.append(seq)
            admitted.append(tid)

    def position(self, tid: str) -> int | None:
        return next((n + 1 for n, (t, _) in enumerate(self.line) if t == tid), None)

    def join(self, tid: str) -> Snapshot:
        removed: list[int] = []
        admitted: list[str] = []
        if tid not in self.slots and self.position(tid) is None:
            self.seq += 1
            self.line.append((tid, self.seq))
            self._fill(removed, admitted)
        seq = next((s for t, s in self.line if t == tid), None)
        state = TokenState.WAITING if seq is not None else TokenState.ADMITTED
        return self._snap(bool(removed), removed, admitted, state=state, position=self.position(tid), seq=seq)

    def leave(self, tid: str) -> Snapshot:
        removed: list[int] = []
        admitted: list[str] = []
        for n, (t, seq) in enumerate(self.line):
            if t == tid:
                del self.line[n]
                removed.append(seq)
                break
        if tid in self.slots:
            self.slots.discard(tid)
            self._fill(removed, admitted)
        return self._snap(bool(removed) or bool(admitted), removed, admitted)

    def view(self, tid: str) -> TokenView:
        if tid in self.slots:
            return TokenView(TokenState.ADMITTED)
        position = self.position(tid)
        return TokenView(TokenState.WAITING, position) if position else TokenView(TokenState.NONE)


class TrackerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = LineModel()
        self.tracker = PositionTracker(history=8)
        self.tracker.reset(self.model._snap(False, [], []))
        self.waiters: dict[str, Waiter] = {}
        self.missed_last = False

    def _seen(self, snap: Snapshot, hidden: bool) -> None:
        if snap.version == self.tracker.version:
            return  # nothing was published
        if hidden:
            self.missed_last = True
            return
        self.missed_last = False
        self.tracker.observe(snap)
        for waiter in self.waiters.values():
            self.tracker.admitted_now(snap, waiter)

    @rule(tid=st.sampled_from(TOKENS), hidden=st.booleans())
    def join(self, tid: str, hidden: bool) -> None:
        snap = self.model.join(tid)
        self._seen(snap, hidden)
        if snap.state == TokenState.WAITING and tid not in self.waiters:
            self.waiters[tid] = Waiter(tid, snap.seq, snap.position, snap.version, snap.epoch, snap)

    @rule(tid=st.sampled_from(TOKENS), hidden=st.booleans())
    def leave(self, tid: str, hidden: bool) -> None:
        self._seen(self.model.leave(tid), hidden)

    @invariant()
    def stands_where_the_model_says(self) -> None:
        if self.missed_last:
            self.tracker.reset(self.model._snap(False, [], []))
            self.missed_last = False
        now = self.model._snap(False, [], [])
        for waiter in self.waiters.values():
            if self.tracker.catch_up(waiter) == Change.STALE:
                self.tracker.settle(waiter, self.model.view(waiter.token_id), now)
        for tid, waiter in list(self.waiters.items()):
            if waiter.state == WaiterState.WAITING:
                assert waiter.position == self.model.position(tid), (tid, waiter.position)
            else:
                if waiter.state == WaiterState.READY:
                    assert tid in self.model.slots or self.model.position(tid) is None
                del self.waiters[tid]


TrackerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestTrackerAgainstAListModel = TrackerMachine.TestCase
