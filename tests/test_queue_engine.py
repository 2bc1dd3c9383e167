"""Issue 3: the queue engine's semantics, one script call at a time, against real Redis."""
from __future__ import annotations

import json
import time

import pytest
import redis

from app.queue.engine import QueueEngine
from app.queue.eta import eta_seconds
from app.queue.settings import QueueSettings

from .helpers.env import REDIS_URL
from .helpers.queue import FAR, advance, another_process, journal, silence


@pytest.fixture
def client(redis_client):
    return redis_client


def join(engine, tid, size=100, expires=FAR):
    return engine.join(tid, 1, size, expires, "127.0.0.1")


def states(engine, *ids):
    return {tid: (v.state, v.position) for tid, v in engine.status(list(ids)).tokens.items()}


def test_fifo_and_capacity(make_engine):
    engine = make_engine(capacity=2)
    snaps = [join(engine, f"t{i}") for i in range(5)]
    assert [s.state for s in snaps] == ["admitted", "admitted", "waiting", "waiting", "waiting"]
    assert [s.position for s in snaps[2:]] == [1, 2, 3]
    assert [s.seq for s in snaps] == [1, 2, 3, 4, 5]
    summary = engine.summary()
    assert (summary.active, summary.waiting, summary.capacity) == (2, 3, 2)


def test_join_is_idempotent_and_keeps_the_place(make_engine):
    engine = make_engine(capacity=1)
    for tid in ("a", "b", "c"):
        join(engine, tid)
    again = join(engine, "b")
    assert (again.state, again.position, again.seq) == ("waiting", 1, 2)
    assert join(engine, "a").state == "admitted"
    assert engine.summary().waiting == 2
    assert join(engine, "d").position == 3


def test_leave_frees_the_slot_and_admits_the_next_in_the_same_step(make_engine):
    engine = make_engine(capacity=1)
    for tid in ("a", "b", "c"):
        join(engine, tid)
    left = engine.leave("a")
    assert left.state == "admitted"
    assert left.admitted == ["b"]
    assert states(engine, "a", "b", "c") == {"a": ("none", 0), "b": ("admitted", 0), "c": ("waiting", 1)}
    assert engine.leave("zzz").state == "none"


def test_waiter_leaving_moves_everyone_behind_up(make_engine):
    engine = make_engine(capacity=1)
    for tid in "abcde":
        join(engine, tid)
    snap = engine.leave("c")
    assert snap.state == "waiting" and snap.removed == [3]
    assert states(engine, "b", "d", "e") == {"b": ("waiting", 1), "d": ("waiting", 2), "e": ("waiting", 3)}


def test_complete_download_spends_the_token(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a")
    join(engine, "b")
    assert engine.start("a", "c1").state == "ok"
    assert engine.progress("a", "c1", 0, 60, 60).state == "ok"
    done = engine.progress("a", "c1", 0, 100, 40)
    assert done.state == "complete" and done.admitted == ["b"]
    assert join(engine, "a").state == "spent"
    assert engine.start("a", "c2", 100).state == "tail"  # resumable once more, without a slot
    assert engine.start("a", "c3", 1).state == "spent"
    finished = [e for e in journal(engine) if e["event"] == "finished"]
    assert finished == [{"t": "a", "event": "finished", "ts": finished[0]["ts"], "file": "1",
                         "outcome": "completed", "bytes": "100", "resent": "0"}]


def test_ranges_from_several_connections_complete_together(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    for conn in ("c1", "c2", "c3"):
        assert engine.start("a", conn).state == "ok"
    assert engine.progress("a", "c2", 500, 1000, 500, closing=True).state == "ok"
    assert engine.progress("a", "c3", 0, 200, 200, closing=True).state == "ok"
    assert engine.progress("a", "c1", 200, 499, 299).state == "ok"
    assert engine.progress("a", "c1", 200, 500, 1).state == "complete"


def test_overlapping_resume_does_not_complete_early(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    engine.start("a", "c1")
    assert engine.progress("a", "c1", 0, 400, 400, closing=True).state == "paused"
    engine.start("a", "c2")
    assert engine.progress("a", "c2", 300, 999, 699).state == "ok"
    assert engine.progress("a", "c2", 300, 1000, 1, closing=True).state == "complete"


def test_connection_limit_per_token(make_engine):
    engine = make_engine(capacity=1, max_connections_per_token=2)
    join(engine, "a")
    assert engine.start("a", "c1").state == "ok"
    assert engine.start("a", "c2").state == "ok"
    assert engine.start("a", "c3").state == "too_many"
    engine.progress("a", "c1", 0, 10, 10, closing=True)
    assert engine.start("a", "c3").state == "ok"


def test_waiting_token_cannot_start(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a")
    join(engine, "b")
    snap = engine.start("b", "c1")
    assert (snap.state, snap.position) == ("waiting", 1)
    assert engine.start("nobody", "c1").state == "none"
    assert engine.progress("nobody", "c1", 0, 5, 5).state == "gone"


def test_expired_token_refused_and_skipped_at_admission(make_engine):
    engine = make_engine(capacity=1)
    assert join(engine, "old", expires=time.time() - 1).state == "expired"
    join(engine, "a")
    join(engine, "short", expires=time.time() + 2)
    join(engine, "c")
    advance(engine, 5)
    snap = engine.leave("a")
    assert snap.admitted == ["c"]
    assert states(engine, "short")["short"] == ("none", 0)


def test_max_queue_length(make_engine):
    engine = make_engine(capacity=1, max_queue_length=2)
    for tid in "abc":
        assert join(engine, tid).state in ("admitted", "waiting")
    full = join(engine, "d")
    assert full.state == "full" and full.waiting == 2
    assert join(engine, "b").state == "waiting"  # re-attaching is never refused


def test_no_show_frees_the_slot(make_engine):
    engine = make_engine(capacity=1, admit_timeout=10)
    join(engine, "a")
    join(engine, "b")
    advance(engine, 9)
    assert engine.reap().admitted == []
    advance(engine, 2)
    assert engine.reap().admitted == ["b"]
    outcomes = [e["outcome"] for e in journal(engine) if e["event"] == "finished"]
    assert outcomes == ["no_show"]


def test_stall_frees_the_slot_and_progress_renews_it(make_engine):
    engine = make_engine(capacity=1, stall_timeout=5)
    join(engine, "a", size=1000)
    join(engine, "b")
    engine.start("a", "c1")
    for sent in (100, 200, 300):
        advance(engine, 4)
        assert engine.progress("a", "c1", 0, sent, 100).state == "ok"
    advance(engine, 6)
    assert engine.reap().admitted == ["b"]
    assert engine.progress("a", "c1", 0, 400, 100).state == "gone"
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["stalled"]


def test_resume_inside_and_outside_the_grace(make_engine):
    engine = make_engine(capacity=1, resume_grace=30, stall_timeout=5, wait_grace=1000)
    join(engine, "a", size=1000)
    join(engine, "b")
    engine.start("a", "c1")
    assert engine.progress("a", "c1", 0, 300, 300, closing=True).state == "paused"
    advance(engine, 20)
    assert engine.reap().admitted == []
    assert engine.start("a", "c2").state == "ok"
    assert engine.progress("a", "c2", 300, 600, 300, closing=True).state == "paused"
    advance(engine, 31)
    assert engine.reap().admitted == ["b"]
    assert engine.start("a", "c3").state == "none"
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["abandoned"]


def test_a_poll_keeps_a_place_for_the_wait_grace(make_engine):
    engine = make_engine(capacity=1, wait_grace=10, away_grace=0)  # no time away: lapsed at once
    for tid in "abcd":
        join(engine, tid)
    advance(engine, 8)
    assert join(engine, "c").position == 2  # came back in time: same place
    engine.status(["b", "d"], mode="poll")
    advance(engine, 8)
    engine.status(["b", "d"], mode="poll")
    advance(engine, 3)
    snap = engine.reap()
    assert snap.removed == [3]  # c was last seen 11 s ago
    assert states(engine, "b", "c", "d") == {"b": ("waiting", 1), "c": ("lapsed", 0), "d": ("waiting", 2)}


def test_a_living_process_holds_its_streams_waiters_for_any_time(make_engine, client):
    engine = make_engine(capacity=1, wait_grace=10, away_grace=0)
    other = another_process(engine)  # another process, same queue
    join(engine, "a")
    for tid in "bcd":
        engine.join(tid, 1, 100, FAR, "", streamed=True)
    for _ in range(6):  # a minute: the holder shows signs of life, one call a few seconds
        advance(engine, 4)
        engine.reap()
        other.reap()
        advance(engine, 4)
        other.reap()
        engine.reap()
    assert states(engine, "b", "c", "d") == {"b": ("waiting", 1), "c": ("waiting", 2), "d": ("waiting", 3)}
    engine.unbind("c")  # c's stream closed: its grace starts now
    advance(engine, 4)
    engine.reap()
    advance(engine, 4)
    assert states(engine, "c")["c"] == ("waiting", 2)
    advance(engine, 3)
    engine.reap()
    assert states(engine, "b", "c", "d") == {"b": ("waiting", 1), "c": ("lapsed", 0), "d": ("waiting", 2)}


def test_a_dead_process_waiters_get_the_grace_from_its_last_sign_of_life(make_engine, client):
    engine = make_engine(capacity=1, wait_grace=10, away_grace=0)
    dead = another_process(engine)
    join(engine, "a")
    for tid in "bc":
        dead.join(tid, 1, 100, FAR, "", streamed=True)
    advance(engine, 4)
    engine.reap()
    assert states(engine, "b")["b"] == ("waiting", 1)
    advance(engine, 2)  # 6 s of silence: given up for dead, grace counted from its last call
    engine.reap()
    advance(engine, 3)
    assert states(engine, "b", "c") == {"b": ("waiting", 1), "c": ("waiting", 2)}
    advance(engine, 2)  # 11 s after its last call
    assert states(engine, "b", "c") == {"b": ("lapsed", 0), "c": ("lapsed", 0)}
    # it was only frozen: it comes back, hears it was given up, and holds its waiters again
    assert dead.reap().rebind and dead.rebinds == 1


def test_a_dead_process_connection_stops_counting(make_engine, client):
    engine = make_engine(capacity=1, resume_grace=30, stall_timeout=20)
    dead = another_process(engine)
    join(engine, "a", size=1000)
    join(engine, "b")
    assert dead.start("a", "c1", 1000).state == "ok"
    dead.progress("a", "c1", 0, 300, 300, range_end=1000)
    # the client resumes on a living process and gets the rest while the dead one still counts
    assert engine.start("a", "c2", 500, 500).state == "ok"  # it had read 500 of what c1 sent
    assert engine.progress("a", "c2", 500, 1000, 500, closing=True, range_end=1000).state == "ok"
    advance(engine, 6)
    snap = engine.reap()  # the dead connection is dropped: the tail had every byte
    assert snap.admitted == ["b"]
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["completed"]


def test_a_download_whose_process_died_is_paused_not_stalled(make_engine, client):
    """Issue 21: the lease ran out in the same call that finds its process dead (a stall
    timeout shorter than a process's time to be given up): the connection ended, the client
    may resume, and a resume completes it."""
    engine = make_engine(capacity=1, resume_grace=60, stall_timeout=2)
    dead = another_process(engine)
    join(engine, "a", size=1000)
    join(engine, "b")
    dead.start("a", "c1", 1000)
    dead.progress("a", "c1", 0, 300, 300, range_end=1000)
    advance(engine, 6)
    engine.reap()
    assert states(engine, "a", "b") == {"a": ("paused", 0), "b": ("waiting", 1)}
    assert engine.start("a", "c2", 640, 360).state == "ok"  # it had read 360 of what c1 sent
    assert engine.progress("a", "c2", 360, 1000, 640, closing=True, range_end=1000).admitted == ["b"]
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["completed"]


def test_what_a_dead_connection_had_yet_to_deliver_is_owed(make_engine, client):
    """A tail that finished does not complete a download whose other connection died before it
    had delivered its stretch (a segmented client, not a resume)."""
    engine = make_engine(capacity=1, resume_grace=60)
    dead = another_process(engine)
    join(engine, "a", size=1000)
    dead.start("a", "c1", 500)
    dead.progress("a", "c1", 0, 100, 100, range_end=500)
    engine.start("a", "c2", 500, 500)
    assert engine.progress("a", "c2", 500, 1000, 500, closing=True, range_end=1000).state == "ok"
    advance(engine, 6)
    engine.reap()
    assert states(engine, "a") == {"a": ("paused", 0)}
    engine.start("a", "c3", 400, 100)
    assert engine.progress("a", "c3", 100, 500, 400, closing=True, range_end=500).state == "complete"


def test_bytes_sent_again_by_a_resume_are_counted_apart(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    engine.start("a", "c1", 1000)
    assert engine.progress("a", "c1", 0, 600, 600, closing=True, range_end=1000).state == "paused"
    engine.start("a", "c2", 600, 400)  # the client saved only 400 of them: 200 are sent again
    assert engine.progress("a", "c2", 400, 1000, 600, closing=True, range_end=1000).state == "complete"
    finished = [e for e in journal(engine) if e["event"] == "finished"]
    assert [(e["bytes"], e["resent"]) for e in finished] == [("1200", "200")]


def test_a_resume_with_a_new_token_completes(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "new", size=1000)
    join(engine, "b")
    assert engine.start("new", "c1", 400).state == "ok"
    done = engine.progress("new", "c1", 600, 1000, 400, closing=True, range_end=1000)
    assert done.state == "complete" and done.admitted == ["b"]


def test_an_unfinished_connection_cancels_a_finished_tail(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    for conn in ("c1", "c2"):
        engine.start("a", conn, 500)
    assert engine.progress("a", "c2", 500, 1000, 500, closing=True, range_end=1000).state == "ok"
    assert engine.progress("a", "c1", 0, 200, 200, closing=True, range_end=500).state == "paused"
    engine.start("a", "c3", 300)
    assert engine.progress("a", "c3", 200, 500, 300, closing=True, range_end=500).state == "complete"


def test_a_superseded_connection_noticed_late_does_not_hold_back_completion(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    engine.start("a", "old", 1000)
    engine.progress("a", "old", 0, 300, 300, range_end=1000)
    engine.start("a", "new", 600)  # the client resumed at 400: it had read 400 of what old sent
    assert engine.progress("a", "new", 400, 1000, 600, closing=True, range_end=1000).state == "ok"
    # only now does the server notice the old connection's reset: it had acknowledged 700 bytes
    assert engine.progress("a", "old", 0, 700, 400, closing=True, range_end=1000).state == "complete"


def test_a_resume_inside_an_owed_stretch_is_believed(make_engine):
    engine = make_engine(capacity=1)
    join(engine, "a", size=1000)
    engine.start("a", "c1", 1000)
    # the client read 420 bytes, the server saw 400 acknowledged when the connection reset
    assert engine.progress("a", "c1", 0, 400, 400, closing=True, range_end=1000).state == "paused"
    engine.start("a", "c2", 580, 420)
    assert engine.progress("a", "c2", 420, 1000, 580, closing=True, range_end=1000).state == "complete"


def test_a_completed_token_keeps_a_bounded_tail_for_the_resume_grace(make_engine):
    engine = make_engine(capacity=1, resume_grace=30, resume_tail=300)
    join(engine, "a", size=1000)
    join(engine, "b")
    engine.start("a", "c1", 1000)
    assert engine.progress("a", "c1", 0, 1000, 1000, closing=True, range_end=1000).state == "complete"
    assert engine.summary().active == 1  # b holds the only slot
    assert engine.start("a", "c2", 400).state == "spent"  # more than the tail budget
    assert engine.start("a", "c3", 200).state == "tail"
    assert engine.start("a", "c4", 200).state == "spent"  # the budget is 300 in all
    assert engine.start("a", "c5", 100).state == "tail"
    assert engine.summary().active == 1  # a tail holds no slot
    advance(engine, 31)
    assert engine.start("a", "c6", 0).state == "spent"


def test_settings_live_in_the_queue(make_engine, client, caplog):
    engine = make_engine(capacity=1)
    join(engine, "a")
    second = QueueEngine(client, engine.keys.queue, QueueSettings(capacity=4))
    with caplog.at_level("INFO"):  # news, not a warning: the queue's rules are its own
        snap = second.join("b", 1, 100, FAR, "")
    assert snap.state == "waiting" and snap.capacity == 1  # the queue's capacity, not its own
    assert second.settings.capacity == 1
    assert "capacity=1 (started with 4)" in caplog.text
    client.hset(engine.keys.settings, "capacity", 2)  # an operator raises it live
    assert engine.reap().admitted == ["b"]
    assert engine.settings.capacity == 2


def test_bad_arguments_are_refused_before_any_write(make_engine, client, caplog):
    from app.queue.engine import QueueScriptError

    engine = make_engine(capacity=1)
    with pytest.raises(ValueError):
        engine.join("a", 1, 100, 1e308, "")
    with pytest.raises(ValueError):
        engine.join("a|b", 1, 100, FAR, "")
    with caplog.at_level("ERROR"), pytest.raises(QueueScriptError):
        engine._run("join", "x", 1, 100, "inf", "")
    assert "queue script join failed" in caplog.text
    assert client.hget(engine.keys.key("info"), "x") is None
    assert client.zcard(engine.keys.waiting) == 0


def test_status_refuses_more_than_a_thousand_ids(make_engine):
    engine = make_engine()
    with pytest.raises(ValueError):
        engine.status([f"t{i}" for i in range(1001)])


def test_reaping_is_bounded_per_call(make_engine, client):
    engine = make_engine(capacity=1, wait_grace=1, away_grace=0)
    pipe = client.pipeline()
    for n in range(1000):
        engine.join(f"t{n}", 1, 10, time.time() + 5, "")
    pipe.execute()
    advance(engine, 10)
    first = engine.reap()
    assert len(first.removed) == 64 and first.more  # a bounded batch, and word that more is due
    calls = 1
    while engine.reap().more:
        calls += 1
    assert calls <= 17 and engine.summary().waiting == 0
    assert engine.summary().waiting == 0


def test_the_channel_names_the_database(client):
    from app.queue.keys import QueueKeys

    assert QueueKeys("q", 1).channel != QueueKeys("q", 2).channel
    one = QueueEngine(redis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/1"), "shared", QueueSettings())
    assert one.keys.channel.endswith(":1")


def test_every_move_of_the_line_publishes_one_event_and_a_join_alone_none(make_engine, client):
    """A join moves no one's place: it publishes nothing (an event reaches every worker of every
    host); admissions and departures do, one each, with gapless versions."""
    engine = make_engine(capacity=1)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(engine.keys.channel)
    pubsub.get_message(timeout=1)
    join(engine, "a")  # admitted at once: an event
    join(engine, "b")  # waits: none
    join(engine, "c")
    join(engine, "b")  # no change: none
    engine.leave("c")  # a place freed: an event
    engine.leave("a")  # an admission: an event
    events = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        events.append(json.loads(message["data"]))
    pubsub.close()
    assert [e["version"] for e in events] == [1, 2, 3]
    assert events[0]["admitted"] == ["a"] and events[0]["removed"] == [1]
    assert events[1]["admitted"] == [] or events[1]["admitted"] == {}
    assert events[1]["removed"] == [3] and events[1]["waiting"] == 1
    assert events[2]["admitted"] == ["b"] and events[2]["removed"] == [2]


def test_script_cache_flush_is_survived(make_engine, client):
    engine = make_engine(capacity=1)
    join(engine, "a")
    client.script_flush()
    assert join(engine, "b").position == 1
    client.script_flush()
    assert engine.leave("a").admitted == ["b"]


def test_all_keys_share_one_hash_tag(make_engine):
    from redis.cluster import key_slot

    engine = make_engine()
    keys = engine.keys.script_keys
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(k.startswith("{dq:") for k in keys)


def test_eta_from_admission_rate(make_engine):
    engine = make_engine(capacity=1, wait_grace=1000)
    for tid in "abcdef":
        join(engine, tid)
    for tid in "abc":
        advance(engine, 10)
        engine.leave(tid)
    snap = engine.summary()
    assert snap.rate == pytest.approx(0.1, rel=0.05)
    assert eta_seconds(snap, 3) == pytest.approx(30, abs=2)


def test_eta_from_bytes_before_any_rate_is_known(make_engine):
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=1000)
    join(engine, "b")
    join(engine, "c")
    engine.start("a", "c1")
    advance(engine, 10)
    engine.progress("a", "c1", 0, 250, 250)  # 25 bytes/s, 750 left: about 30 s
    snap = engine.summary()
    assert snap.rate == 0
    assert eta_seconds(snap, 1) == pytest.approx(30, abs=1)
    # then a download as long as this one's projected whole (10 s so far + 30 s left)
    assert eta_seconds(snap, 2) == pytest.approx(70, abs=2)


def test_a_first_report_alone_does_not_time_a_slot(make_engine):
    """What a client acknowledged in its first second is mostly what filled the socket buffers:
    its slot is timed once two samples in a row measured it alike."""
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=100_000_000)
    join(engine, "b")
    engine.start("a", "c1")
    advance(engine, 1)
    engine.progress("a", "c1", 0, 10_000_000, 10_000_000)  # buffers filled: "10 MB/s"
    assert eta_seconds(engine.summary(), 1) is None  # not "9 s"
    advance(engine, 2)
    engine.progress("a", "c1", 0, 18_000_000, 8_000_000)  # 4 MB/s since: one measurement
    assert eta_seconds(engine.summary(), 1) is None
    advance(engine, 2)
    engine.progress("a", "c1", 0, 26_000_000, 8_000_000)  # 4 MB/s again: 74 MB left
    assert eta_seconds(engine.summary(), 1) == pytest.approx(74 / 4, abs=1)


def test_a_client_that_read_ahead_is_not_taken_for_a_slow_one(make_engine):
    """curl --limit-rate 4M on loopback, as the queue saw it: its buffers filled, then it paused
    (0.13 MB/s over the next 0.35 s: "800 s left"), then gulped (2.0, then 5.5 MB/s). The
    waiter behind it is told nothing until two samples agree, and then the truth."""
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=100 << 20)
    join(engine, "b")
    engine.start("a", "c1")
    acked = 0
    for wait, now_acked, told in ((0.15, 4_653_056, None), (0.35, 4_698_112, None), (1.0, 7_383_939, None),
                                  (1.0, 17_665_794, None), (2.0, 28_012_108, (104_857_600 - 28_012_108) / 5.37e6)):
        advance(engine, wait)
        engine.progress("a", "c1", 0, now_acked, now_acked - acked)
        acked = now_acked
        eta, rate = eta_seconds(engine.summary(), 1), engine.status(["a"]).tokens["a"].rate
        if told is None:
            assert eta is None and not rate, (acked, eta, rate)  # the queue and /progress alike
        else:
            assert eta == pytest.approx(told, abs=1) and rate == pytest.approx(5.37e6, rel=0.02)


def test_a_pause_the_window_still_holds_is_not_taken_for_a_steady_speed(make_engine):
    """A reader that paused 1.5 s after its read-ahead, then runs at 4.4 MB/s: two window figures
    in a row agree (1.8, then 2.5 MB/s: "36 s" for a wait of 21) while the newest stretch alone
    runs at 4.4; not steady until the stretch agrees, and the window measures the speed once the
    pause has left it."""
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=100 << 20)
    join(engine, "b")
    engine.start("a", "c1")
    acked = 0
    for wait, now_acked in ((0.15, 4_650_000), (1.5, 4_700_000), (1.0, 9_100_000), (1.0, 13_500_000)):
        advance(engine, wait)
        engine.progress("a", "c1", 0, now_acked, now_acked - acked)
        acked = now_acked
    assert eta_seconds(engine.summary(), 1) is None and not engine.status(["a"]).tokens["a"].rate
    for _ in range(6):
        advance(engine, 1.0)
        engine.progress("a", "c1", 0, acked + 4_400_000, 4_400_000)
        acked += 4_400_000
    assert engine.status(["a"]).tokens["a"].rate == pytest.approx(4.4e6, rel=0.02)
    assert eta_seconds(engine.summary(), 1) == pytest.approx(((100 << 20) - acked) / 4.4e6, abs=1)


def test_a_fast_download_is_timed_half_a_second_in_when_it_ends_before_the_average(make_engine):
    """The waiter behind a small download about to end hears "a moment", not the average
    download; one measured slower than the average counts as the average until steady."""
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "first", size=1000)
    join(engine, "fast", size=8_000_000)
    join(engine, "slow", size=8_000_000)
    join(engine, "b")
    engine.start("first", "c1")
    advance(engine, 10)
    assert engine.progress("first", "c1", 0, 1000, 1000).state == "complete"  # the average: 10 s
    engine.start("fast", "c2")
    advance(engine, 0.15)
    engine.progress("fast", "c2", 0, 3_000_000, 3_000_000)
    advance(engine, 0.35)
    engine.progress("fast", "c2", 0, 6_500_000, 3_500_000)  # 10 MB/s: 0.15 s left
    assert eta_seconds(engine.summary(), 1) == 1  # the first slot to free: a moment
    advance(engine, 0.2)
    assert engine.progress("fast", "c2", 0, 8_000_000, 1_500_000).state == "complete"
    engine.start("slow", "c3")
    advance(engine, 0.15)
    engine.progress("slow", "c3", 0, 3_000_000, 3_000_000)
    advance(engine, 0.35)
    engine.progress("slow", "c3", 0, 3_035_000, 35_000)  # 0.1 MB/s over 0.35 s: "50 s left"
    snap = engine.summary()
    assert eta_seconds(snap, 1) == pytest.approx(snap.cycle, abs=1) and snap.cycle < 10


def test_a_bursty_client_is_measured_burst_to_burst_until_it_stalls(make_engine):
    """curl --limit-rate acknowledges 12 MB every 3 s (4 MB/s): the rate the queue times its
    slot by (and /progress shows) is 4 MB/s between the bursts, not wherever a window's edges
    fall; once silent longer than any gap between its bursts, it falls."""
    engine = make_engine(capacity=1, wait_grace=1000)
    join(engine, "a", size=1_000_000_000)
    join(engine, "b")
    engine.start("a", "c1")
    acked, rates = 0, []
    for step in range(1, 41):  # a report every half second for 20 s
        advance(engine, 0.5)
        delta = 12_000_000 if step % 6 == 0 else 0
        engine.progress("a", "c1", 0, acked + delta, delta)
        acked += delta
        if step > 20:
            rates.append(engine.status(["a"]).tokens["a"].rate)
    assert all(r == pytest.approx(4_000_000, rel=0.02) for r in rates), rates
    for _ in range(8):  # it stops reading
        advance(engine, 0.5)
        engine.progress("a", "c1", 0, acked, 0)
    assert engine.status(["a"]).tokens["a"].rate < 3_000_000


def test_a_dead_process_that_handed_everything_to_its_kernel_completes(make_engine, client):
    engine = make_engine(capacity=1, resume_grace=60)
    dead = another_process(engine)
    join(engine, "a", size=1000)
    join(engine, "b")
    dead.start("a", "c1", 1000)
    dead.progress("a", "c1", 0, 200, 200, range_end=1000, handed=True)  # all sent, 200 acknowledged
    advance(engine, 6)
    assert engine.reap().admitted == ["b"]  # its kernel delivers the rest after the process died
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["completed"]
    assert engine.start("a", "c2", 800).state == "tail"  # a client that lacks them still resumes


def test_the_time_the_queue_was_unreachable_is_held_against_no_one(make_engine, client):
    """Issue 21 (a failover): Redis answered no one for 6 s. The first process heard again must
    not give up the others, which reconnect a few seconds apart (a download whose every byte sat
    in its kernel's buffers was taken as complete, its slot handed on), nor the clients that
    could not start or poll meanwhile; a process not back within OWNER_TTL after is given up,
    its waiters' grace counted from when the queue was heard again."""
    engine = make_engine(capacity=2, wait_grace=8, away_grace=0, admit_timeout=3)
    other, gone = another_process(engine), another_process(engine)
    join(engine, "a", size=1000)
    other.start("a", "c1", 1000)
    other.progress("a", "c1", 0, 200, 200, range_end=1000, handed=True)  # all sent, 200 acknowledged
    join(engine, "r")  # admitted: its client was told and is about to start
    other.join("b", 1, 100, FAR, "", streamed=True)
    gone.join("d", 1, 100, FAR, "", streamed=True)
    join(engine, "p")  # a page that polls
    silence(engine, 6)
    engine.status(["x"], mode="poll")  # the first call heard again may be any client's
    engine.reap()
    advance(engine, 4)  # the others are still reconnecting, the clients coming back
    engine.reap()
    waiting = {"b": ("waiting", 1), "d": ("waiting", 2), "p": ("waiting", 3)}
    assert states(engine, "a", "r", *waiting) == {"a": ("downloading", 0), "r": ("admitted", 0), **waiting}
    assert not other.reap().rebind
    engine.status(["p"], mode="poll")
    advance(engine, 2)  # 6 s since the queue was heard again: gone is given up, r missed its turn
    assert engine.reap().admitted == ["b"]
    assert states(engine, "a", "r", "d", "p") == {"a": ("downloading", 0), "r": ("missed", 0),
                                                 "d": ("waiting", 1), "p": ("waiting", 2)}
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["no_show"]
    advance(engine, 3)  # d's grace of 8 s ran from when the queue was heard again, not before
    engine.reap()
    assert states(engine, "d")["d"] == ("lapsed", 0)


def test_eta_follows_each_slot_then_the_turnover(make_engine):
    engine = make_engine(capacity=2, wait_grace=1000)
    assert eta_seconds(engine.summary(), 1) == 0  # a free slot in an open line: now
    join(engine, "fast", size=1000)
    join(engine, "slow", size=1000)
    join(engine, "w1")
    assert eta_seconds(engine.summary(), 1) is None  # nothing started, nothing finished: unknown
    engine.start("fast", "c1")
    engine.start("slow", "c2")
    advance(engine, 10)
    engine.progress("fast", "c1", 0, 500, 500)  # 50 bytes/s: 10 s left, 20 s in all
    engine.progress("slow", "c2", 0, 100, 100)  # 10 bytes/s: 90 s left, 100 s in all
    snap = engine.summary()
    assert sorted(snap.slots) == [pytest.approx(10, abs=0.1), pytest.approx(90, abs=0.1)]
    assert eta_seconds(snap, 1) == pytest.approx(10, abs=1)  # the head: the fast one's slot
    # behind it, the mean of the rate's guess (measured to Redis's now: a slow machine's
    # milliseconds lengthen its span) and the slots: the fast one's again after a download (60 s:
    # no download finished yet, so the running ones' projected wholes), before the slow one's at 90
    assert snap.cycle == pytest.approx(60, abs=0.5) and snap.expected == pytest.approx(60, abs=0.5)
    assert eta_seconds(snap, 2) == pytest.approx((2 / snap.rate + 70) / 2, abs=1)
    assert eta_seconds(snap, 3) == pytest.approx((3 / snap.rate + 90) / 2, abs=1)
    # far back the same, the slots turning over every expected download
    by_slots = 130 + (199 - 3) // 2 * 60  # after the two first frees and the fast slot's second
    assert eta_seconds(snap, 200) == pytest.approx((200 / snap.rate + by_slots) / 2, rel=0.01)
    engine.configure(mode="paused")
    assert eta_seconds(engine.summary(), 1) == pytest.approx(10, abs=1)  # paused: no free slot is "now"


def test_eta_counts_down_between_events():
    from app.queue.replies import Snapshot

    snap = Snapshot(now=0, waiting=1, active=1, capacity=1, rate=0, version=1, slots=[30.0], cycle=40.0)
    assert eta_seconds(snap, 1) == 30 and eta_seconds(snap, 2) == 70
    snap.seen_at -= 12  # received 12 s ago, nothing changed since
    assert eta_seconds(snap, 1) == 18 and eta_seconds(snap, 2) == 58
    snap.seen_at -= 60  # the slot is overdue: it frees any moment, not "now"
    assert eta_seconds(snap, 1) == 1
    paced = Snapshot(now=0, waiting=5, active=1, capacity=1, rate=0.5, rate_span=10, version=1)
    assert eta_seconds(paced, 5) == 10
    paced.seen_at -= 10  # no admission for 10 more seconds: the rate halves, the wait doubles
    assert eta_seconds(paced, 5) == 20
