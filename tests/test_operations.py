"""Issue 9: operators see and steer the queue, live, on every host (real gunicorn, Redis, PostgreSQL)."""
from __future__ import annotations

import threading
import time

import requests
import sqlalchemy as sa

from app import create_app
from app.config import load_config
from app.extensions import db
from app.runtime import runtime
from testbed.servers import wait_until

from .helpers.http import RawDownload, new_token, sse, token_id

KEY = "admin-key-for-tests"
BEARER = {"Authorization": f"Bearer {KEY}"}


def admin(base: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{base}/api/v1/admin{path}", headers=BEARER, timeout=10, **kwargs)


class Follower:
    """One waiter's SSE stream read in a thread: every event, and when ``ready`` came."""

    def __init__(self, base: str, token: str) -> None:
        self.events: list = []
        self.ready_at: float | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(base, token), daemon=True)
        self.thread.start()

    def _run(self, base: str, token: str) -> None:
        try:
            for event in sse(f"{base}/api/v1/queue/{token}", timeout=60):
                self.events.append(event)
                if event.event == "ready":
                    self.ready_at = time.monotonic()
                if event.event in ("ready", "error"):
                    return
        except Exception as exc:
            self.error = exc

    @property
    def waiting(self) -> bool:
        return any(e.event == "position" for e in self.events) and self.ready_at is None

    def modes(self) -> list[str]:
        return [e.json()["mode"] for e in self.events if e.event == "position"]


def join(base: str, token: str) -> dict:
    response = requests.post(f"{base}/api/v1/queue/{token}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def audit_actions(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(sa.text("SELECT action, actor FROM audit_log ORDER BY id"))]


def test_admin_refuses_without_the_key_and_with_a_wrong_one(settings):
    app = create_app(load_config(**settings, ADMIN_API_KEY=KEY))
    client = app.test_client()
    try:
        for method, path in (("get", "/admin"), ("get", "/api/v1/admin/queue"), ("post", "/api/v1/admin/queue/pause"),
                             ("delete", "/api/v1/admin/tokens/abc"), ("get", "/api/v1/admin/events")):
            missing = client.open(path, method=method)
            assert missing.status_code == 401, path
            assert missing.json["error"]["code"] == "unauthorized"
            assert "Basic" in missing.headers["WWW-Authenticate"]
            wrong = client.open(path, method=method, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403 and wrong.json["error"]["code"] == "forbidden", path
        assert client.get("/api/v1/admin/queue", auth=("alice", KEY)).status_code == 200
        # a browser's cached basic auth cannot be used by another site to change the queue
        cross = client.post("/api/v1/admin/queue/pause", auth=("alice", KEY), headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert runtime(app).engine.summary().mode == "open"
    finally:
        runtime(app).stop()
    disabled = create_app(load_config(**settings)).test_client().get("/api/v1/admin/queue", headers=BEARER)
    assert disabled.status_code == 403 and "ADMIN_API_KEY" in disabled.json["error"]["message"]


def test_capacity_set_on_one_host_admits_two_more_waiters_on_another(app, gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    host_a = gunicorn(workers=1, QUEUE_CAPACITY=1, ADMIN_API_KEY=KEY)
    host_b = gunicorn(workers=1, QUEUE_CAPACITY=1, ADMIN_API_KEY=KEY)
    holder = new_token(host_b.url, file_id)
    assert join(host_b.url, holder)["state"] == "ready"
    followers = [Follower(host_b.url, new_token(host_b.url, file_id)) for _ in range(3)]
    for follower in followers:  # one after another: their order in line is known
        wait_until(lambda f=follower: f.waiting, message="a waiter in line")

    changed_at = time.monotonic()
    response = admin(host_a.url, "PATCH", "/queue/settings", json={"capacity": 3})
    assert response.status_code == 200, response.text
    assert response.json()["line"]["capacity"] == 3
    try:
        wait_until(lambda: followers[0].ready_at and followers[1].ready_at, timeout=15, message="two admissions")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[(f.events, f.error) for f in followers]}") from None
    print(f"capacity 1 -> 3 on host A: host B's waiters ready after "
          f"{max(f.ready_at for f in followers[:2]) - changed_at:.3f} s")
    assert followers[2].ready_at is None  # the third still waits: 3 slots, 3 holders
    assert admin(host_b.url, "GET", "/queue").json()["line"]["active"] == 3
    assert ("settings", "admin@127.0.0.1") in audit_actions(app)


def test_pause_keeps_places_and_tells_waiters_then_resume_admits(app, gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    server = gunicorn(workers=2, QUEUE_CAPACITY=1, ADMIN_API_KEY=KEY)
    holder = new_token(server.url, file_id)
    assert join(server.url, holder)["state"] == "ready"
    first, second = Follower(server.url, new_token(server.url, file_id)), None
    wait_until(lambda: first.waiting, message="first waiter")
    second = Follower(server.url, new_token(server.url, file_id))
    wait_until(lambda: second.waiting, message="second waiter")

    assert admin(server.url, "POST", "/queue/pause").json()["line"]["mode"] == "paused"
    wait_until(lambda: "paused" in first.modes() and "paused" in second.modes(), timeout=10,
               message="waiters told the line is paused")
    assert requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=10).json()["left"] is True
    line = admin(server.url, "GET", "/queue").json()["line"]
    assert (line["active"], line["waiting"]) == (0, 2)  # a free slot, and nobody admitted into it
    assert first.ready_at is None and second.ready_at is None
    assert [e.json()["position"] for e in second.events if e.event == "position"][-1] == 2

    assert admin(server.url, "POST", "/queue/resume").json()["line"]["mode"] == "open"
    wait_until(lambda: first.ready_at, timeout=10, message="the first waiter admitted on resume")
    assert second.ready_at is None
    assert [a for a, _ in audit_actions(app)] == ["pause", "resume"]


def test_drain_refuses_newcomers_and_serves_the_line(app, gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    server = gunicorn(workers=1, QUEUE_CAPACITY=1, ADMIN_API_KEY=KEY)
    holder, waiter = new_token(server.url, file_id), new_token(server.url, file_id)
    assert join(server.url, holder)["state"] == "ready"
    assert join(server.url, waiter)["state"] == "waiting"
    assert admin(server.url, "POST", "/queue/drain").status_code == 200

    refused = requests.post(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=10)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "queue_draining"
    assert int(refused.headers["Retry-After"]) > 0
    assert requests.get(f"{server.url}/api/v1/queue", timeout=10).json()["mode"] == "draining"
    assert join(server.url, waiter)["state"] == "waiting"  # a place already held is kept

    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=10)
    status = requests.get(f"{server.url}/api/v1/queue/{waiter}/status", timeout=10).json()
    assert status["state"] == "ready"


def test_removing_a_downloading_token_frees_its_slot_for_the_next(app, gunicorn, make_file):
    file_id, _ = make_file("big.bin", size=32 << 20)
    server = gunicorn(workers=2, QUEUE_CAPACITY=1, ADMIN_API_KEY=KEY)
    holder = new_token(server.url, file_id)
    assert join(server.url, holder)["state"] == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{holder}")  # a slow reader: it stays downloading
    assert raw.status == 200 and len(raw.read(64 << 10)) == 64 << 10
    follower = Follower(server.url, new_token(server.url, file_id))
    wait_until(lambda: follower.waiting, message="a waiter behind the download")
    running = admin(server.url, "GET", "/queue").json()["downloads"]
    assert [d["token_id"] for d in running] == [token_id(holder)]
    assert running[0]["state"] == "downloading" and running[0]["file_name"] == "big.bin"

    removed = admin(server.url, "DELETE", f"/tokens/{token_id(holder)}")
    assert removed.json() == {"removed": True, "previous_state": "downloading"}
    wait_until(lambda: follower.ready_at, timeout=15, message="the next waiter admitted")
    received = 64 << 10
    while chunk := raw.read(256 << 10):  # still slow (~5 MB/s): cut at the transfer's next report
        received += len(chunk)
        time.sleep(0.05)
    raw.close()
    assert received < 32 << 20
    again = requests.get(f"{server.url}/api/v1/downloads/{holder}", timeout=10)
    assert again.status_code == 410 and again.json()["error"]["code"] == "token_removed"
    rejoin = requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=10)
    assert rejoin.status_code == 410 and rejoin.json()["error"]["code"] == "token_removed"
    assert ("remove", "admin@127.0.0.1") in audit_actions(app)


def test_cli_shows_and_steers_the_queue(app, make_file, settings):
    file_id, _ = make_file("f.bin", size=4096)
    engine = runtime(app).engine
    with app.app_context():
        from app.catalog.service import get_file

        size = get_file(file_id).size
    engine.join("tok-1", file_id, size, time.time() + 600)
    engine.join("tok-2", file_id, size, time.time() + 600)
    runner = app.test_cli_runner()

    status = runner.invoke(args=["queue", "status"])
    assert status.exit_code == 0, status.output
    assert "0 waiting, 2 of 4 slots downloading" in status.output and "tok-1" in status.output
    changed = runner.invoke(args=["queue", "set", "capacity=2", "admit_timeout=90"])
    assert changed.exit_code == 0, changed.output
    assert "0 waiting, 2 of 2 slots" in changed.output
    assert engine.summary().settings.admit_timeout == 90
    bad = runner.invoke(args=["queue", "set", "capacity=0"])
    assert bad.exit_code != 0 and "capacity must be between 1" in bad.output
    assert runner.invoke(args=["queue", "pause"]).exit_code == 0
    assert engine.summary().mode == "paused"
    removed = runner.invoke(args=["queue", "remove", "tok-2"])
    assert "removed (was admitted)" in removed.output
    assert engine.join("tok-2", file_id, size, time.time() + 600).state == "removed"
    actions = audit_actions(app)
    assert [a for a, _ in actions] == ["settings", "pause", "remove"]
    assert all(actor.startswith("cli:") for _, actor in actions)
