"""Issue 3: random sequences of queue operations against a pure-Python reference model.

The model runs each operation at the Redis time the real script reported (``now`` in
its reply), and the test moves that clock with the queue's skew, so leases and graces
expire exactly when the model says they do.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.queue.engine import QueueSettings

from .helpers.env import REDIS_URL
from .helpers.queue import advance, alive, drop, new_engine

TOKENS = [f"t{i}" for i in range(6)]
CONNS = ["c1", "c2", "c3"]
SIZE = 100
CONFIG = QueueSettings(capacity=2, admit_timeout=10, stall_timeout=5, resume_grace=8,
                       wait_grace=6, max_queue_length=4, max_connections_per_token=2, resume_tail=60,
                       away_grace=9)
MS = {name: int(getattr(CONFIG, name) * 1000) for name in
      ("admit_timeout", "stall_timeout", "resume_grace", "wait_grace", "away_grace")}


@dataclass
class Token:
    state: str
    seq: int
    expires: int
    conns: set[str] = field(default_factory=set)
    ranges: list[list[int]] = field(default_factory=list)
    tail_done: bool = False
    owed: list[list[int]] = field(default_factory=list)
    away: bool = False  # presence stopped: keeps its join number, never admitted meanwhile


class Model:
    """The queue's rules, written plainly."""

    def __init__(self) -> None:
        self.now = 0
        self.seq = 0
        self.tokens: dict[str, Token] = {}
        self.presence: dict[str, int] = {}
        self.lease: dict[str, int] = {}
        self.spent: dict[str, int] = {}  # ended token (completed, lapsed, missed) -> token expiry
        self.ended: dict[str, str] = {}  # ended token -> spent | lapsed | missed
        self.done: dict[str, list[int]] = {}  # completed token -> [resumable until, tail bytes left]

    def waiting(self, away: bool = False) -> list[str]:
        """The present waiters in line order (``away``: the away ones)."""
        return sorted((t for t, v in self.tokens.items() if v.state == "waiting" and v.away == away),
                      key=lambda t: self.tokens[t].seq)

    def position(self, tid: str) -> int:
        token = self.tokens.get(tid)
        if token is None or token.state != "waiting":
            return 0
        return sum(1 for t in self.waiting() if self.tokens[t].seq < token.seq) + 1

    def _drop(self, tid: str) -> None:
        self.tokens.pop(tid, None)
        self.presence.pop(tid, None)

    def _remember(self, tid: str, token: Token, state: str) -> None:
        if token.expires > self.now:
            self.spent[tid] = token.expires
            self.ended[tid] = state

    def _come_back(self, tid: str) -> None:
        token = self.tokens.get(tid)
        if token is not None and token.state == "waiting":
            token.away = False
            self.presence[tid] = self.now + MS["wait_grace"]

    def _release(self, tid: str) -> None:
        self.tokens.pop(tid, None)
        self.lease.pop(tid, None)

    def reap(self) -> None:
        for tid in [t for t, d in self.lease.items() if d <= self.now]:
            token = self.tokens[tid]
            self._release(tid)
            if token.state == "admitted":  # its turn passed unused
                self._remember(tid, token, "missed")
        for tid in [t for t, d in self.presence.items() if d <= self.now]:
            token = self.tokens[tid]
            if not token.away and MS["away_grace"] > 0:
                token.away = True
                self.presence[tid] = self.now + MS["away_grace"]
            else:
                self._drop(tid)
                self._remember(tid, token, "lapsed")
        for tid in [t for t in self.waiting() + self.waiting(away=True) if self.tokens[t].expires <= self.now]:
            self._drop(tid)
        for tid in [t for t, d in self.spent.items() if d <= self.now]:
            del self.spent[tid]
            self.ended.pop(tid, None)
            self.done.pop(tid, None)

    def fill(self) -> None:
        while len(self.lease) < CONFIG.capacity and self.waiting():
            head = self.waiting()[0]
            if self.tokens[head].expires <= self.now:
                self._drop(head)
                continue
            self.presence.pop(head)
            self.tokens[head].state = "admitted"
            self.lease[head] = self.now + MS["admit_timeout"]

    def join(self, tid: str, expires: int) -> str:
        self.reap()
        token = self.tokens.get(tid)
        if token is not None:
            result = token.state
            if token.state == "waiting":
                self._come_back(tid)
        elif tid in self.spent:
            result = self.ended[tid]
        elif expires <= self.now:
            result = "expired"
        elif len(self.waiting()) + len(self.waiting(away=True)) >= CONFIG.max_queue_length:
            result = "full"
        else:
            self.seq += 1
            self.tokens[tid] = Token("waiting", self.seq, expires)
            self.presence[tid] = self.now + MS["wait_grace"]
            result = "waiting"
        self.fill()
        return self.tokens[tid].state if tid in self.tokens else result

    def renew(self, tid: str) -> None:
        self.reap()
        self._come_back(tid)
        self.fill()

    def leave(self, tid: str) -> str:
        self.reap()
        token = self.tokens.get(tid)
        state = token.state if token else "none"
        if token and token.state == "waiting":
            self._drop(tid)
        elif token:
            self._release(tid)
        self.fill()
        return state

    def start(self, tid: str, conn: str, length: int) -> str:
        self.reap()
        self.fill()
        token = self.tokens.get(tid)
        if token is None:
            if tid not in self.spent:
                return "none"
            if self.ended[tid] != "spent":
                return self.ended[tid]
            until, left = self.done[tid]
            if until > self.now and left >= length:
                self.done[tid][1] -= length
                return "tail"
            return "spent"
        if token.state == "waiting":
            return "waiting"
        if len(token.conns) >= CONFIG.max_connections_per_token:
            return "too_many"
        token.conns.add(conn)
        token.state = "downloading"
        self.lease[tid] = self.now + MS["stall_timeout"]
        return "ok"

    def progress(self, tid: str, conn: str, first: int, last: int, range_end: int, closing: bool) -> str:
        self.reap()
        token = self.tokens.get(tid)
        if token is None or token.state == "waiting":
            result = "gone"
        else:
            if last > first:
                token.ranges = merge([*token.ranges, [first, last]])
            if closing:
                token.conns.discard(conn)
                if last >= range_end >= SIZE:
                    token.tail_done = True
                elif last < range_end:
                    token.owed = merge([*token.owed, [last, range_end]])
            else:
                token.conns.add(conn)
            covered = len(token.ranges) == 1 and token.ranges[0][0] == 0 and token.ranges[0][1] >= SIZE
            owed = [w for w in token.owed if not any(r[0] <= w[0] and w[1] <= r[1] for r in token.ranges)]
            if covered or (token.tail_done and not token.conns and not owed):
                self.spent[tid] = token.expires
                self.ended[tid] = "spent"
                self.done[tid] = [self.now + MS["resume_grace"], min(CONFIG.resume_tail, SIZE)]
                self._release(tid)
                result = "complete"
            elif not token.conns:
                token.state = "paused"
                self.lease[tid] = self.now + MS["resume_grace"]
                result = "paused"
            else:
                token.state = "downloading"
                self.lease[tid] = self.now + MS["stall_timeout"]
                result = "ok"
        self.fill()
        return result

    def status(self) -> dict[str, tuple[str, int]]:
        self.reap()
        self.fill()
        view = {}
        for tid in TOKENS:
            if tid in self.tokens:
                view[tid] = (self.tokens[tid].state, self.position(tid))
            elif tid in self.spent:
                view[tid] = (self.ended[tid], 0)
            else:
                view[tid] = ("none", 0)
        return view


def merge(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.client = redis.Redis.from_url(REDIS_URL)
        self.engine = new_engine(self.client, **CONFIG.__dict__)
        self.model = Model()
        self.base = time.time()

    def teardown(self) -> None:
        drop(self.engine)
        self.client.close()

    @rule(tid=st.sampled_from(TOKENS), short=st.booleans())
    def join(self, tid: str, short: bool) -> None:
        expires = self.base + (4 if short else 3600)
        snap = self.engine.join(tid, 1, SIZE, expires, "")
        self.model.now = snap.now
        expires_ms = int(expires * 1000)
        expected = self.model.join(tid, expires_ms)
        assert snap.state == expected, (snap.state, expected)
        if snap.state == "waiting":
            assert snap.position == self.model.position(tid)

    @rule(tid=st.sampled_from(TOKENS))
    def leave(self, tid: str) -> None:
        snap = self.engine.leave(tid)
        self.model.now = snap.now
        assert snap.state == self.model.leave(tid)

    @rule(tid=st.sampled_from(TOKENS))
    def renew(self, tid: str) -> None:
        snap = self.engine.status([tid], mode="poll")
        self.model.now = snap.now
        self.model.renew(tid)

    @rule(tid=st.sampled_from(TOKENS), conn=st.sampled_from(CONNS), length=st.sampled_from([0, 30, 100]))
    def start(self, tid: str, conn: str, length: int) -> None:
        snap = self.engine.start(tid, conn, length)
        self.model.now = snap.now
        assert snap.state == self.model.start(tid, conn, length)

    @rule(tid=st.sampled_from(TOKENS), conn=st.sampled_from(CONNS), first=st.sampled_from([0, 40]),
          amount=st.sampled_from([10, 60, 100]), to_end=st.booleans(), closing=st.booleans())
    def progress(self, tid: str, conn: str, first: int, amount: int, to_end: bool, closing: bool) -> None:
        last = min(SIZE, first + amount)
        range_end = SIZE if to_end else last
        snap = self.engine.progress(tid, conn, first, last, last - first, closing, range_end)
        self.model.now = snap.now
        assert snap.state == self.model.progress(tid, conn, first, last, range_end, closing)

    @rule(seconds=st.sampled_from([0.5, 1, 2, 3, 5, 7, 9, 11]))
    def wait(self, seconds: float) -> None:
        # one living process: its housekeeping keeps it alive meanwhile, so a download that runs
        # out of lease stalled (a dead process's connections are the engine tests')
        advance(self.engine, seconds)
        alive(self.engine)

    @rule()
    def reap(self) -> None:
        snap = self.engine.reap()
        self.model.now = snap.now
        self.model.reap()
        self.model.fill()

    @precondition(lambda self: True)
    @invariant()
    def same_view(self) -> None:
        snap = self.engine.status(TOKENS)
        self.model.now = snap.now
        expected = self.model.status()
        actual = {tid: (v.state, v.position) for tid, v in snap.tokens.items()}
        assert actual == expected
        assert snap.active == len(self.model.lease) <= CONFIG.capacity
        assert snap.waiting == len(self.model.waiting())
        assert snap.away == len(self.model.waiting(away=True))


QueueMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueModel = QueueMachine.TestCase
