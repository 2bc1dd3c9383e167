"""Issue 19: the away policy, one script call at a time against real Redis, on the queue's own
clock (``advance``): an away waiter keeps its place but costs no slot."""
from __future__ import annotations

from .helpers.queue import FAR, advance, journal


def join(engine, tid):
    return engine.join(tid, 1, 100, FAR, "127.0.0.1")


def states(engine, *ids):
    return {tid: (v.state, v.position) for tid, v in engine.status(list(ids)).tokens.items()}


def poll(engine, *ids):
    engine.status(list(ids), mode="poll")


def test_an_away_waiter_keeps_its_place_but_the_slot_goes_to_the_next_present_one(make_engine):
    engine = make_engine(capacity=1, wait_grace=10, away_grace=600)
    for tid in "abcd":
        join(engine, tid)  # a holds the slot; b, c, d wait
    advance(engine, 8)
    poll(engine, "c", "d")
    advance(engine, 3)
    went = engine.reap()  # b unseen for 11 s: away
    assert went.away == 1 and went.waiting == 2 and went.removed == [2]
    # positions count present waiters; b would stand first again if it came back
    assert states(engine, "b", "c", "d") == {"b": ("waiting", 1), "c": ("waiting", 1), "d": ("waiting", 2)}
    assert engine.leave("a").admitted == ["c"]  # its turn came while away: c gets the slot
    poll(engine, "b")  # b is back: first in line again, ahead of d who joined after it
    assert states(engine, "b", "d") == {"b": ("waiting", 1), "d": ("waiting", 2)}
    assert engine.leave("c").admitted == ["b"]
    assert engine.leave("b").admitted == ["d"]
    admitted = [e["t"] for e in journal(engine) if e["event"] == "admitted"]
    assert admitted == ["a", "c", "b", "d"]


def test_coming_back_by_a_join_or_a_stream_is_published_as_an_added_place(make_engine):
    engine = make_engine(capacity=1, wait_grace=5, away_grace=600)
    for tid in "abc":
        join(engine, tid)
    advance(engine, 4)
    poll(engine, "c")
    advance(engine, 2)
    assert engine.reap().removed == [2]  # b away
    back = engine.join("b", 1, 100, FAR, "", streamed=True)  # its page came back with a stream
    assert back.state == "waiting" and back.position == 1 and back.added == [2] and back.away == 0
    assert states(engine, "c")["c"] == ("waiting", 2)


def test_an_away_place_lapses_after_the_away_grace_and_its_client_hears_so(make_engine):
    engine = make_engine(capacity=1, wait_grace=10, away_grace=60, admit_timeout=1000)
    for tid in "abc":
        join(engine, tid)
    advance(engine, 11)
    poll(engine, "a", "c")
    engine.reap()
    advance(engine, 55)
    poll(engine, "c")
    engine.reap()
    assert states(engine, "b")["b"] == ("waiting", 1)  # 55 s away: still kept
    advance(engine, 6)
    assert engine.reap().away == 0
    assert states(engine, "b")["b"] == ("lapsed", 0)
    again = join(engine, "b")  # no silent new place at the back: the join says what happened
    assert again.state == "lapsed" and again.position is None and engine.summary().waiting == 1
    assert states(engine, "c")["c"] == ("waiting", 1)


def test_a_turn_that_passed_unused_is_remembered_as_missed(make_engine):
    engine = make_engine(capacity=1, admit_timeout=10, wait_grace=1000)
    join(engine, "a")
    join(engine, "b")
    advance(engine, 11)
    assert engine.reap().admitted == ["b"]
    assert states(engine, "a")["a"] == ("missed", 0)
    assert join(engine, "a").state == "missed"
    assert engine.start("a", "c1").state == "missed"


def test_thousands_away_at_the_front_cost_the_present_waiter_nothing(make_engine):
    """3,000 away waiters ahead: one reap admits the present one (admission never walks the away
    set), and every script's reply stays one read of each set."""
    engine = make_engine(capacity=1, wait_grace=1, away_grace=3600)
    join(engine, "holder")
    for n in range(3000):
        engine.join(f"w{n}", 1, 100, FAR, "")
    advance(engine, 2)
    join(engine, "present")  # joins after all of them, stays present
    calls = 1
    while engine.reap().more:  # going away is reclaiming: RECLAIM_BATCH per call
        calls += 1
        poll(engine, "present")
    assert calls <= 3000 // 64 + 2
    snap = engine.summary()
    assert (snap.away, snap.waiting) == (3000, 1)
    assert states(engine, "present", "w0")["present"] == ("waiting", 1)
    assert engine.leave("holder").admitted == ["present"]
    assert states(engine, "w0", "w2999") == {"w0": ("waiting", 1), "w2999": ("waiting", 1)}


def test_a_release_places_an_away_prequeued_waiter_out_of_the_line(make_engine):
    engine = make_engine(capacity=1, wait_grace=5, away_grace=600, admit_timeout=1000)
    join(engine, "holder")
    release_ms = engine.summary().now + 60_000
    for tid in ("p1", "p2"):
        engine.join(tid, 7, 100, FAR, "", release_at=release_ms / 1000)
    advance(engine, 4)
    poll(engine, "p2", "holder")
    advance(engine, 2)
    engine.reap()  # p1 goes away before its release (pre-queued: no join number to keep yet)
    advance(engine, 60)
    poll(engine, "p2", "holder")
    while engine.release().due:
        pass
    snap = engine.summary()
    assert (snap.waiting, snap.away, snap.prequeued) == (1, 1, 0)
    assert states(engine, "p2")["p2"] == ("waiting", 1)
    poll(engine, "p1")  # back: at the place its draw gave it
    assert {states(engine, "p1")["p1"][1], states(engine, "p2")["p2"][1]} == {1, 2}
