"""Faults real deployments meet, made to happen: a killed worker, Redis down or restarted empty,
readers cut off anywhere, two hosts that disagree, two deployments on one Redis server."""
from __future__ import annotations

import hashlib
import random
import subprocess
import threading
import time

import requests

from testbed.servers import wait_until

from .helpers.http import RawDownload, new_token, sse, token_id, wait_turn
from .helpers.queue import outcome_of

FAULTS = dict(QUEUE_CAPACITY=1, ADMIT_TIMEOUT=30, WAIT_GRACE=30)


class StatusPoller:
    """A waiter that keeps its place by polling (it survives worker kills); notes when admitted."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.ready_at: float | None = None
        self._stop = threading.Event()
        assert requests.post(f"{base}/api/v1/queue/{token}", timeout=5).json()["state"] == "waiting"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                state = requests.get(f"{self.base}/api/v1/queue/{self.token}/status", timeout=5).json()["state"]
            except (requests.RequestException, ValueError):
                continue
            if state == "ready":
                self.ready_at = time.monotonic()
                return

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def read_all(raw: RawDownload) -> bytes:
    data = b""
    try:
        while chunk := raw.read(1 << 20):
            data += chunk
    except OSError:
        pass
    return data


def test_killed_worker_mid_download_resumed_completes_within_seconds(app, gunicorn, make_file, tmp_path):
    file_id, path = make_file("big.bin", size=64 * 1024 * 1024)
    server = gunicorn(**FAULTS)  # STALL_TIMEOUT stays 30 s: the slot must not wait for it
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    poller = StatusPoller(server.url, new_token(server.url, file_id))
    raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
    have = raw.read(3_000_000)
    for pid in server.serving():
        subprocess.run(["kill", "-9", str(pid)], check=True)
    have += read_all(raw)  # whatever was already on its way
    raw.close()
    out = tmp_path / "out.bin"
    out.write_bytes(have)
    url = f"{server.url}/api/v1/downloads/{token}"
    wait_until(lambda: requests.get(f"{server.url}/healthz", timeout=2).status_code == 200, message="workers back")
    subprocess.run(["curl", "-sS", "-f", "-C", "-", "-o", str(out), url], check=True, timeout=120)
    finished_at = time.monotonic()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    wait_until(lambda: poller.ready_at, timeout=20, message="the next waiter admitted")
    poller.stop()
    assert poller.ready_at - finished_at < 10  # the dead worker's connection stopped counting
    assert outcome_of(app, token_id(token), timeout=15) == "completed"


def test_redis_down_around_the_last_byte(app, gunicorn, make_file, redis_server):
    redis = redis_server(durable=True)
    file_id, path = make_file("mid.bin", size=8 * 1024 * 1024)
    server = gunicorn(**FAULTS, REDIS_URL=redis.url)
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
    have = raw.read(6 * 1024 * 1024)
    redis.stop()
    down_at = time.monotonic()
    have += read_all(raw)
    raw.close()
    assert have == path.read_bytes()
    time.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))
    redis.start()
    poller = StatusPoller(server.url, new_token(server.url, file_id))
    wait_until(lambda: poller.ready_at, timeout=15, message="the slot came back")
    poller.stop()
    assert outcome_of(app, token_id(token), timeout=15) == "completed"


def test_readers_cut_off_anywhere_can_always_resume(gunicorn, make_file):
    server = gunicorn(**{**FAULTS, "QUEUE_CAPACITY": 2})
    rng = random.Random(8)
    for size in (1024 * 1024, 64 * 1024 * 1024):
        file_id, path = make_file(f"f{size}.bin", size=size)
        data = path.read_bytes()
        for _ in range(3 if size < 8 << 20 else 2):
            token = new_token(server.url, file_id)
            assert wait_turn(server.url, token)[1].event == "ready"
            have = b""
            for attempt in range(20):
                headers = {"Range": f"bytes={len(have)}-"} if have else {}
                raw = RawDownload(server.port, f"/api/v1/downloads/{token}", headers=headers, rcvbuf=256 << 10)
                assert raw.status in (200, 206), (attempt, raw.status, raw.read(500))
                if attempt == 0:
                    time.sleep(0.5)  # the server sends what the buffers take: then read nothing
                    want = 0
                else:
                    want = rng.choice([0, rng.randrange(1, size), size])
                have += raw.read(min(want, size - len(have)))
                raw.close()
                if len(have) == size:
                    break
            assert have == data
            url = f"{server.url}/api/v1/queue/{token}/status"
            wait_until(lambda: requests.get(url, timeout=5).json()["state"] == "done", timeout=5,  # noqa: B023
                       message="the download complete")


def test_two_hosts_started_with_different_capacities_follow_the_queue(gunicorn, make_file, tmp_path):
    file_id, _ = make_file()
    first = gunicorn(**FAULTS)  # capacity 1: seeds the queue
    second = gunicorn(**{**FAULTS, "QUEUE_CAPACITY": 4})
    tokens = [new_token(first.url, file_id) for _ in range(6)]
    for n, token in enumerate(tokens):
        host = (first, second)[n % 2]
        requests.post(f"{host.url}/api/v1/queue/{token}", timeout=5)
    for host in (first, second):
        summary = requests.get(f"{host.url}/api/v1/queue", timeout=5).json()
        assert (summary["capacity"], summary["active"], summary["waiting"]) == (1, 1, 5)
    log = (tmp_path / "gunicorn-1.log").read_text()
    assert "follows its own settings" in log and "capacity=1 (started with 4)" in log


def test_two_deployments_on_one_redis_server_do_not_hear_each_other(gunicorn, make_file, settings):
    file_id, _ = make_file()
    base = str(settings["REDIS_URL"]).rsplit("/", 1)[0]
    one = gunicorn(**FAULTS, REDIS_URL=f"{base}/1")
    two = gunicorn(**FAULTS, REDIS_URL=f"{base}/2")
    holder, waiter = new_token(one.url, file_id), new_token(one.url, file_id)
    requests.post(f"{one.url}/api/v1/queue/{holder}", timeout=5)
    events = []

    def listen() -> None:
        for event in sse(f"{one.url}/api/v1/queue/{waiter}", timeout=60):
            events.append(event)
            if event.event != "position":
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_until(lambda: events, message="the waiter's place")
    others = [new_token(two.url, file_id) for _ in range(20)]
    for token in others:  # the other deployment's line moves a lot
        requests.post(f"{two.url}/api/v1/queue/{token}", timeout=5)
    for token in others:
        requests.delete(f"{two.url}/api/v1/queue/{token}", timeout=5)
    time.sleep(1.5)
    assert [e.event for e in events] == ["position"] and events[0].json()["position"] == 1
    requests.delete(f"{one.url}/api/v1/queue/{holder}", timeout=5)
    thread.join(10)
    assert [e.event for e in events] == ["position", "ready"]


def test_redis_down_answers_503_everywhere(gunicorn, make_file, redis_server):
    redis = redis_server()
    file_id, _ = make_file()
    server = gunicorn(**FAULTS, REDIS_URL=redis.url)
    token = new_token(server.url, file_id)
    redis.stop()
    for method, path in (("POST", f"/api/v1/files/{file_id}/tokens"), ("GET", f"/request/generate/{file_id}"),
                         ("POST", f"/api/v1/queue/{token}"), ("GET", f"/api/v1/queue/{token}/status"),
                         ("GET", "/api/v1/queue"), ("GET", f"/api/v1/downloads/{token}"), ("GET", "/healthz")):
        response = requests.request(method, server.url + path, timeout=10)
        assert response.status_code == 503, (method, path, response.text)
        if path != "/healthz":
            assert response.json()["error"]["code"] == "unavailable", path


def test_redis_restarted_empty_mid_queue_every_waiter_is_told_the_truth(gunicorn, make_file, redis_server):
    redis = redis_server()
    file_id, _ = make_file()
    server = gunicorn(**FAULTS, REDIS_URL=redis.url)
    holder = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    streams: dict[int, list] = {n: [] for n in range(5)}

    def listen(n: int) -> None:
        for event in sse(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=60):
            streams[n].append(event)
            if event.event != "position":
                return

    threads = [threading.Thread(target=listen, args=(n,), daemon=True) for n in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(streams.values()), message="every waiter's place")
    assert sorted(s[-1].json()["position"] for s in streams.values()) == [1, 2, 3, 4, 5]
    redis.stop()
    redis.start()  # empty: the holder's slot and every place are gone
    restarted = time.monotonic()
    wait_until(lambda: any(s[-1].event == "ready" for s in streams.values()), timeout=15,
               message="the next admission reached its waiter")
    wait_until(lambda: sorted(s[-1].json().get("position") or 0 for s in streams.values()) == [0, 1, 2, 3, 4],
               timeout=15, message="every waiter told its new place")
    assert time.monotonic() - restarted < 10
    assert not [e for s in streams.values() for e in s if e.event == "error"]


def test_a_resume_with_a_new_token_completes_it(app, gunicorn, make_file):
    file_id, path = make_file("mid.bin", size=8 * 1024 * 1024)
    data = path.read_bytes()
    server = gunicorn(**FAULTS)
    first = new_token(server.url, file_id)
    assert wait_turn(server.url, first)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{first}")
    have = raw.read(3_000_000)
    raw.close()
    requests.delete(f"{server.url}/api/v1/queue/{first}", timeout=5)  # its slot lapses (here: given back)
    second = new_token(server.url, file_id)
    assert wait_turn(server.url, second)[1].event == "ready"
    poller = StatusPoller(server.url, new_token(server.url, file_id))
    rest = requests.get(f"{server.url}/api/v1/downloads/{second}", headers={"Range": f"bytes={len(have)}-"},
                        timeout=30)
    assert rest.status_code == 206 and have + rest.content == data
    wait_until(lambda: poller.ready_at, timeout=10, message="the slot freed at once")
    poller.stop()
    assert outcome_of(app, token_id(second)) == "completed"
