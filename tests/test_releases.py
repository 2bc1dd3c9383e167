"""Scheduled releases in the queue engine, on real Redis: the pre-queue, the shuffle placed in
bounded batches by any process, exactly once, ahead of everyone who joins after the release."""
from __future__ import annotations

from app.queue.constants import RELEASE_BATCH

from .helpers.queue import advance, another_process, journal, new_engine

FAR = 4102444800  # token expiry: 2100-01-01


def queue_now(engine) -> float:
    """The queue's clock (Redis time plus the tests' skew), in seconds."""
    return engine.summary().now / 1000


def positions(engine, ids: list[str]) -> dict[str, int]:
    tokens = engine.status(ids).tokens
    return {i: tokens[i].position for i in ids}


def release_all(engine) -> int:
    calls = 0
    while True:
        calls += 1
        snap = engine.release()
        if not snap.due:
            return calls


def test_pre_queued_waiters_are_placed_ahead_of_later_joiners_in_a_random_order(redis_client):
    engine = new_engine(redis_client, capacity=1, wait_grace=10_000, admit_timeout=10_000)
    release = queue_now(engine) + 100
    engine.join("early", 2, 10, FAR)  # another file, no release: admitted
    engine.join("before", 2, 10, FAR)  # waits at 1
    pre = [f"p{n}" for n in range(50)]
    for token in pre:
        snap = engine.join(token, 1, 10, FAR, release_at=release)
        assert snap.state == "waiting" and snap.position is None and snap.release_at == int(release * 1000)
    assert engine.summary().releases == [(1, int(release * 1000), 50)]
    assert engine.summary().prequeued == 50
    engine.join("meanwhile", 2, 10, FAR)  # another file's newcomer before the release: behind "before"
    assert engine.release().drawn == 0  # nothing is due yet
    advance(engine, 101)
    engine.join("late", 1, 10, FAR, release_at=release)  # after the release time: behind all 50
    assert release_all(engine) == 1  # 50 < RELEASE_BATCH: one call
    seen = positions(engine, ["before", "meanwhile", *pre, "late"])
    assert seen["before"] == 1 and seen["meanwhile"] == 2
    assert sorted(seen[t] for t in pre) == list(range(3, 53))
    assert seen["late"] == 53
    assert [seen[t] for t in pre] != list(range(3, 53))  # shuffled (1 / 50! to fail by chance)
    assert engine.summary().releases == [] and engine.summary().prequeued == 0
    assert redis_client.hlen(engine.keys.key("prequeue")) == 1  # only the 'all' counter, at 0


def test_the_release_is_uniform_over_repeated_runs(redis_client):
    """The first arrival of 5 lands on each place 1..5 equally often: chi-square, 4 degrees of
    freedom, 300 runs, under the 0.1 % critical value (18.47)."""
    runs, size = 300, 5
    counts = [0] * size
    for _ in range(runs):
        engine = new_engine(redis_client, capacity=1, wait_grace=10_000, admit_timeout=10_000)
        engine.join("holder", 9, 10, FAR)
        release = queue_now(engine) + 10
        for n in range(size):
            engine.join(f"a{n}", 1, 10, FAR, release_at=release)
        advance(engine, 11)
        release_all(engine)
        counts[positions(engine, ["a0"])["a0"] - 1] += 1
        redis_client.delete(*engine.keys.script_keys)
    expected = runs / size
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 18.47, counts


def test_a_release_interrupted_between_batches_is_finished_by_another_process_exactly_once(redis_client):
    engine = new_engine(redis_client, capacity=1, wait_grace=10_000, admit_timeout=10_000)
    engine.join("holder", 9, 10, FAR)
    count = RELEASE_BATCH * 2 + 17
    release = queue_now(engine) + 10
    pre = [f"p{n}" for n in range(count)]
    for token in pre:
        engine.join(token, 1, 10, FAR, release_at=release)
    advance(engine, 11)
    first = engine.release(draws=40)  # this process dies after one call
    assert (first.drawn, first.left, first.due) == (40, count - 40, True)
    assert len(first.placed) == 40 and len(first.added) == 40
    engine.leave(pre[-1])  # a waiter leaves mid-release (pre-queued or placed, whichever it is)
    other = another_process(engine)
    assert other.reap().due  # the other process's once-a-second call sees it due
    calls = release_all(other)
    assert calls == 2  # 528 - 40 placed - 1 left = 488: 256 + 232
    seen = positions(other, pre[:-1])
    assert sorted(seen.values()) == list(range(1, count))  # everyone once, no gap, no double
    assert other.summary().waiting == count - 1


def test_leaving_the_pre_queue_and_rescheduling(redis_client):
    engine = new_engine(redis_client, capacity=1, wait_grace=10_000, admit_timeout=10_000)
    engine.join("holder", 9, 10, FAR)
    release = queue_now(engine) + 3600
    for n in range(5):
        engine.join(f"p{n}", 1, 10, FAR, release_at=release)
    engine.leave("p1")
    engine.leave("p4")
    assert engine.summary().releases == [(1, int(release * 1000), 3)]
    engine.reschedule(1, None)  # released now
    assert engine.reap().due
    release_all(engine)
    assert sorted(positions(engine, ["p0", "p2", "p3"]).values()) == [1, 2, 3]
    for n in range(2):
        engine.join(f"q{n}", 1, 10, FAR, release_at=release)  # the catalog still says later
    assert engine.summary().releases == [(1, int(release * 1000), 2)]
    engine.leave("q0")
    engine.leave("q1")
    assert engine.summary().releases == []  # an emptied pre-queue is forgotten


def test_the_place_drawn_is_journaled_at_admission(redis_client):
    engine = new_engine(redis_client, capacity=1, wait_grace=10_000, admit_timeout=10_000)
    engine.join("holder", 9, 10, FAR)
    release = queue_now(engine) + 5
    for n in range(3):
        engine.join(f"p{n}", 1, 10, FAR, release_at=release)
    advance(engine, 6)
    release_all(engine)
    first = min(("p0", "p1", "p2"), key=lambda t: positions(engine, [t])[t])
    engine.leave("holder")
    admitted = [e for e in journal(engine) if e["event"] == "admitted" and e["t"] == first]
    assert admitted and admitted[0]["drawn"] == "1"
