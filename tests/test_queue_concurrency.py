"""Issue 3: hundreds of clients in several OS processes at once; some leave or vanish."""
from __future__ import annotations

import multiprocessing
import queue as queue_module
import random
import time
import uuid

import redis

from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings

from .helpers.clients import run_clients
from .helpers.env import REDIS_URL
from .helpers.queue import drop, journal, replay_max_active

PROCESSES = 4
PER_PROCESS = 60
CAPACITY = 3
SETTINGS = dict(capacity=CAPACITY, admit_timeout=0.6, stall_timeout=0.6, resume_grace=0.6,
                wait_grace=60, max_queue_length=10_000)


def plan_for(index: int) -> list[tuple[str, str]]:
    rng = random.Random(index)
    kinds = ["normal"] * 50 + ["leaver"] * 6 + ["no_show"] * 2 + ["staller"] * 2
    rng.shuffle(kinds)
    return [(f"p{index}-{n:03d}", kind) for n, kind in enumerate(kinds[:PER_PROCESS])]


def test_many_processes_fifo_capacity_no_leaks():
    name = f"conc{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    engine = QueueEngine(client, name, QueueSettings(**SETTINGS))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 3.0
    procs = [ctx.Process(target=run_clients, args=(REDIS_URL, name, SETTINGS, plan_for(i), start_at, results))
             for i in range(PROCESSES)]
    try:
        for proc in procs:
            proc.start()
        outcomes = {}
        deadline = time.time() + 150
        while len(outcomes) < PROCESSES * PER_PROCESS and time.time() < deadline:
            try:
                tid, kind, seq, outcome = results.get(timeout=5)
            except queue_module.Empty:
                continue
            outcomes[tid] = (kind, seq, outcome)
        for proc in procs:
            proc.join(30)
        assert len(outcomes) == PROCESSES * PER_PROCESS

        # every client was served according to its behaviour
        for tid, (kind, _seq, outcome) in outcomes.items():
            expected = {"normal": {"complete"}, "no_show": {"admitted"}, "staller": {"stalled"},
                        "leaver": {"left", "complete"}}[kind]
            assert outcome in expected, (tid, kind, outcome)
        seqs = [seq for _, seq, _ in outcomes.values()]
        assert len(set(seqs)) == len(seqs)  # every join got its own place

        # wait for the leases of no-shows and stallers to be reclaimed, then read the journal
        deadline = time.time() + 10
        while engine.reap().active and time.time() < deadline:
            time.sleep(0.1)
        events = journal(engine)
        admitted = [e for e in events if e["event"] == "admitted"]
        admitted_ids = [e["t"] for e in admitted]
        assert len(admitted_ids) == len(set(admitted_ids))  # nobody admitted twice
        admitted_seqs = [int(e["seq"]) for e in admitted]
        assert admitted_seqs == sorted(admitted_seqs)  # admission order = join order
        assert replay_max_active(events) == CAPACITY  # full, never over
        finished = {e["t"]: e["outcome"] for e in events if e["event"] == "finished"}
        assert set(finished) == set(admitted_ids)  # every slot came back
        for tid, (kind, _seq, _outcome) in outcomes.items():
            want = {"normal": "completed", "no_show": "no_show", "staller": "stalled"}.get(kind)
            if want:
                assert finished[tid] == want, (tid, kind, finished.get(tid))
        snap = engine.summary()
        assert (snap.active, snap.waiting) == (0, 0)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        drop(engine)
        client.close()
