"""Issue 12: admission by bandwidth — the queue's side (the scripts), on a controlled clock.

The scripts' clock is moved with ``advance`` and the throughput made with progress reports, so
every figure below is exact; ``test_bandwidth.py`` does the same with real gunicorn and clients.
"""
from __future__ import annotations

import pytest

from app import create_app
from app.config import load_config
from app.queue.engine import QueueScriptError
from app.queue.eta import eta_seconds
from app.runtime import runtime

from .helpers.queue import FAR, advance, another_process, next_second

MB = 1_000_000


def join_all(engine, ids):
    return [engine.join(tid, 1, 10**9, FAR, "127.0.0.1") for tid in ids]


def report_seconds(engine, running: dict[str, int], seconds: int) -> None:
    """Each running download reports ``running[id]`` bytes every second for ``seconds`` seconds,
    each round in the middle of its own second of the queue's clock."""
    done = dict.fromkeys(running, 0)
    for _ in range(seconds):
        next_second(engine)
        for tid, rate in running.items():
            engine.progress(tid, "c1", 0, done[tid] + rate, rate, range_end=10**9)
            done[tid] += rate


def start_all(engine, ids) -> None:
    """Start the downloads in the middle of a second of the queue's clock: the reports that follow
    then come whole seconds after their start."""
    next_second(engine)
    for tid in ids:
        engine.start(tid, "c1", 10**9)


def active_ids(engine, ids):
    return [tid for tid, view in engine.status(ids).tokens.items() if view.state in ("admitted", "downloading")]


def test_without_a_budget_capacity_alone_decides(make_engine):
    engine = make_engine(capacity=3)
    snaps = join_all(engine, list("abcde"))
    assert [s.state for s in snaps] == ["admitted"] * 3 + ["waiting"] * 2
    assert snaps[-1].limit is None and snaps[-1].egress is None


def test_young_downloads_reserve_min_rate_then_measured_throughput_decides(make_engine):
    engine = make_engine(capacity=10, egress_budget=10 * MB, min_rate=2 * MB)
    ids = [f"t{n}" for n in range(9)]
    snaps = join_all(engine, ids)
    # nothing measured yet: each new download counts as MIN_RATE, so 5 fit in 10 MB/s
    assert [s.state for s in snaps] == ["admitted"] * 5 + ["waiting"] * 4
    assert snaps[-1].limit == 5
    running = ids[:5]
    start_all(engine, running)
    # slow clients: 1 MB/s each once measured
    report_seconds(engine, dict.fromkeys(running, MB), 5)
    snap = engine.summary()
    assert snap.egress == pytest.approx(5 * MB)
    # 5 MB/s measured leaves room for two more at 2 MB/s: admitted by the reports themselves
    assert snap.active == 7 and snap.limit == 7
    assert sorted(active_ids(engine, ids)) == ids[:7]  # in join order


def test_fast_downloads_stop_admissions_until_room_frees(make_engine):
    """A download faster than MIN_RATE counts as MIN_RATE (it could give way under fair shares);
    one slower counts as what it takes."""
    engine = make_engine(capacity=10, egress_budget=10 * MB, min_rate=4 * MB)
    join_all(engine, ["fast1", "fast2"])
    start_all(engine, ["fast1", "fast2"])
    report_seconds(engine, {"fast1": 5 * MB, "fast2": 5 * MB}, 6)
    snaps = join_all(engine, ["w1", "w2"])
    assert [s.state for s in snaps] == ["waiting", "waiting"]  # 4 + 4 + another 4 exceeds 10
    snap = engine.summary()
    assert snap.egress == pytest.approx(10 * MB) and snap.limit == 2 and snap.active == 2
    assert eta_seconds(snap, 1) != 0  # the ETA knows no slot is free for the budget
    # one slows to 1 MB/s (its client's speed): 1 + 4 leaves room for one more at 4 MB/s
    report_seconds(engine, {"fast1": MB, "fast2": 5 * MB}, 5)
    assert engine.summary().active == 3 and engine.summary().waiting == 1


def test_a_host_that_dies_stops_counting(make_engine, redis_client):
    """A dead process's download connections are dropped with its sign of life (5 s): the
    download is paused, counts for nothing, and the next waiter gets its room."""
    engine = make_engine(capacity=10, egress_budget=10 * MB, min_rate=6 * MB)
    host = another_process(engine)  # the host that will die
    join_all(host, ["gone"])
    start_all(host, ["gone"])
    report_seconds(host, {"gone": 10 * MB}, 5)
    assert join_all(engine, ["next"])[0].state == "waiting"  # 6 MB/s counted + 6 more > 10
    advance(engine, 6)  # the host sends nothing more, not even its sign of life
    snap = engine.reap()  # what every living process sends once a second
    assert snap.active == 2 and snap.admitted == ["next"]
    assert engine.status(["gone"]).tokens["gone"].state == "paused"  # its slot kept for a resume


def test_the_budget_is_a_live_setting_checked_like_the_others(make_engine):
    engine = make_engine(capacity=10)
    assert engine.configure(egress_budget=50 * MB, min_rate=5 * MB).settings.egress_budget == 50 * MB
    assert engine.summary().limit == 10
    assert engine.configure(egress_budget=0).limit is None  # 0: no budget
    with pytest.raises(QueueScriptError):  # the scripts refuse it before any write
        engine.configure(min_rate=0, capacity=3)
    assert engine.summary().settings.min_rate == 5 * MB and engine.summary().capacity == 10


def test_operators_see_and_set_the_budget(settings):
    """The admin state, the admin page and /metrics show the budget, the measured egress and the
    limit it allows; a PATCH changes it for every host, checked like any setting."""
    key = "admin-key-for-tests"
    app = create_app(load_config(**settings, ADMIN_API_KEY=key, EGRESS_BUDGET=8 * MB, MIN_RATE=2 * MB))
    client, auth = app.test_client(), {"Authorization": f"Bearer {key}"}
    try:
        line = client.get("/api/v1/admin/queue", headers=auth).json["line"]
        assert (line["egress_bytes_per_second"], line["admission_limit"]) == (0, 4)  # capacity 4 by default
        assert 'id="egress-figure"' in client.get("/admin", auth=("op", key)).text
        metrics = client.get("/metrics").text
        assert "download_queue_egress_budget_bytes 8e+06" in metrics
        assert "download_queue_admission_limit 4.0" in metrics
        changed = client.patch("/api/v1/admin/queue/settings", headers=auth, json={"egress_budget": 100 * MB})
        assert changed.status_code == 200 and changed.json["settings"]["egress_budget"] == 100 * MB
        refused = client.patch("/api/v1/admin/queue/settings", headers=auth, json={"min_rate": 0})
        assert refused.status_code == 400 and refused.json["error"]["field"] == "min_rate"
        off = client.patch("/api/v1/admin/queue/settings", headers=auth, json={"egress_budget": 0})
        assert off.json["line"]["admission_limit"] is None
        assert "download_queue_egress_budget_bytes" not in client.get("/metrics").text
    finally:
        runtime(app).stop()
