"""A line where a third of the waiters go away for a while: does an away waiter ever cost a slot?

On a private redis-server with the queue's defaults (WAIT_GRACE 30 s, AWAY_GRACE 10 min,
ADMIT_TIMEOUT 60 s), and first, as the peer, the rule before the away policy (AWAY_GRACE 0: a place
lapses as soon as its presence stops), the same clients with the same seed: --waiters clients join a line of --capacity slots and wait without a stream,
polling every 10 s as a terminal or a JSON client does. A third of them (chosen at random) stop
polling at a random moment for a random time (1 s to 15 min, so some outlast AWAY_GRACE), then
poll again. An admitted client downloads for 20 to 60 s and finishes (one that is away when its
turn comes would not start: its slot would idle until ADMIT_TIMEOUT). The queue's clock is
simulated (the scripts' skew), one second per step, so hours of waiting take a minute.

Printed, beside the figures:
- admissions of a waiter the queue knew to be away (its last poll more than WAIT_GRACE ago): must be
  0; and of one gone for less than WAIT_GRACE (the grace's price: a slot idles until ADMIT_TIMEOUT);
- order: an admission while a present waiter who joined earlier still waits (must be 0): a
  returning waiter goes back to its own place, ahead of everyone who joined after it;
- what became of everyone: completed, lapsed after AWAY_GRACE (and told so), never lost;
- Redis: script µs per call of this run (INFO commandstats).

    python bench/away_bench.py [--waiters 1000] [--capacity 20] [--seed 1]
"""
from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis
from harness import RedisProcess

from app.queue.constants import MAX_STATUS_IDS
from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.queue.states import HAS_SLOT, TokenState

FAR = 4102444800  # token expiry: 2100-01-01
POLL_EVERY = 10  # seconds between two polls of a present client


@dataclass
class Client:
    token: str
    seq: int = 0
    away_from: float = -1.0  # simulated seconds; -1: never goes away
    away_until: float = -1.0
    last_poll: float = 0.0
    admitted_at: float = -1.0
    finish_at: float = -1.0
    done: str = ""  # completed | lapsed | missed

    def away(self, now: float) -> bool:
        return self.away_from <= now < self.away_until


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp) / "redis").start()
        try:
            # the peer first: the rule before the away policy (a place lapses when presence stops)
            for away_grace in (0.0, QueueSettings().away_grace):
                run(args, random.Random(args.seed), redis.Redis.from_url(server.url), away_grace)
        finally:
            server.stop()


def run(args: argparse.Namespace, rng: random.Random, client: redis.Redis, grace: float) -> None:
    defaults = QueueSettings()
    engine = QueueEngine(client, f"away{grace:g}", QueueSettings(capacity=args.capacity, away_grace=grace))
    wait = defaults.wait_grace
    clients = {f"w{n}": Client(f"w{n}") for n in range(args.waiters)}
    for c in clients.values():
        snap = engine.join(c.token, 1, 100, FAR, "")
        c.seq = snap.seq or 0
        if snap.state in HAS_SLOT:
            c.admitted_at, c.finish_at = 0.0, rng.uniform(20, 60)
    for c in rng.sample(list(clients.values()), args.waiters // 3):
        c.away_from = rng.uniform(0, 1800)
        c.away_until = c.away_from + rng.uniform(1, 900)
    client.config_resetstat()
    now, steps = 0.0, 0
    by_seq = sorted(clients.values(), key=lambda c: c.seq)
    counts = {"away": 0, "grace": 0, "order": 0}

    def on_admitted(tokens: list[str], now: float) -> None:
        """Judged as the call that admitted them returned, before anyone else moves."""
        for token in tokens:
            c = clients[token]
            if c.admitted_at >= 0:
                continue
            c.admitted_at = now
            if c.away(now):
                counts["away" if now - c.last_poll >= wait else "grace"] += 1
                continue  # it cannot start: the slot waits for ADMIT_TIMEOUT
            c.finish_at = now + rng.uniform(20, 60)
            for other in by_seq:  # every present waiter who joined earlier was admitted already
                if other.seq >= c.seq:
                    break
                if not other.done and other.admitted_at < 0 and now - other.last_poll < wait:
                    counts["order"] += 1
                    break

    while any(not c.done for c in clients.values()) and steps < 20_000:
        steps += 1
        now += 1
        client.hincrby(engine.keys.counters, "skew", 1000)
        for c in clients.values():  # downloads that end now
            if c.admitted_at >= 0 and not c.done and 0 <= c.finish_at <= now:
                on_admitted(engine.leave(c.token).admitted, now)
                c.done = "completed"
        due = [c.token for c in clients.values()
               if not c.done and (c.admitted_at < 0 or c.finish_at < 0) and not c.away(now)
               and now - c.last_poll >= POLL_EVERY]
        for start in range(0, len(due), MAX_STATUS_IDS):
            snap = engine.status(due[start:start + MAX_STATUS_IDS], mode="poll")
            for token, view in snap.tokens.items():
                c = clients[token]
                c.last_poll = now
                if view.state in (TokenState.LAPSED, TokenState.MISSED, TokenState.NONE):
                    c.done = str(view.state)
                elif c.admitted_at >= 0 and c.finish_at < 0 and view.state in HAS_SLOT:
                    c.finish_at = now + rng.uniform(20, 60)  # back in time: it starts now
            on_admitted(snap.admitted, now)
        on_admitted(engine.reap().admitted, now)
    stats = client.info("commandstats")
    scripts = [v for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")]
    calls = sum(v["calls"] for v in scripts)
    usec = sum(v["usec"] for v in scripts)
    outcomes: dict[str, int] = {}
    for c in clients.values():
        outcomes[c.done or "unfinished"] = outcomes.get(c.done or "unfinished", 0) + 1
    went = sum(1 for c in clients.values() if c.away_from >= 0)
    print(f"away bench: {args.waiters} waiters, capacity {args.capacity}, {went} go away "
          f"(1 s to 15 min); WAIT_GRACE {wait:g} s, AWAY_GRACE {grace:g} s; {steps} simulated s")
    print(f"  admitted while known away (must be 0): {counts['away']}")
    print(f"  admitted within WAIT_GRACE of leaving (a slot idles until ADMIT_TIMEOUT): {counts['grace']}")
    print(f"  admitted while a present waiter who joined earlier waited (must be 0): {counts['order']}")
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"  Redis: {calls} script calls, {usec / max(1, calls):.1f} µs per call")


if __name__ == "__main__":
    main()
