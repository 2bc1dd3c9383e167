"""Issue 4: the whole flow against gunicorn (2 gevent workers), real PostgreSQL and Redis."""
from __future__ import annotations

import hashlib
import threading
import time

import redis
import requests

from testbed.servers import wait_until

from .helpers.env import REDIS_URL
from .helpers.http import RawDownload, download_sha, new_token, sse, token_id, wait_turn
from .helpers.queue import ActiveMonitor, history, outcome_of

FLOW = dict(QUEUE_CAPACITY=3, ADMIT_TIMEOUT=2, STALL_TIMEOUT=2, RESUME_GRACE=3, WAIT_GRACE=5,
            RESUME_TAIL=4 << 20)


def test_thirty_clients_in_order_never_more_than_capacity(app, gunicorn, make_file, settings):
    file_id, path = make_file("big.bin", size=3 * 1024 * 1024)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    server = gunicorn(**FLOW)
    monitor = ActiveMonitor(REDIS_URL, settings["QUEUE_NAME"])
    results, errors = {}, []
    # the first three admitted hold their slots until all thirty have joined: a queue forms
    # whatever the machine's speed
    joined, all_joined, lock = [], threading.Event(), threading.Lock()

    def on_first_event() -> None:
        with lock:
            joined.append(1)
            if len(joined) == 30:
                all_joined.set()

    def client(n: int) -> None:
        try:
            token = new_token(server.url, file_id)
            positions, last = wait_turn(server.url, token, on_first=on_first_event)
            assert last.event == "ready", last
            assert all_joined.wait(60)
            assert last.json()["download_url"] == f"/api/v1/downloads/{token}/big.bin"
            assert last.json()["admit_deadline"].endswith("Z")
            status, digest, size = download_sha(server.url, token)
            results[n] = (token, status, digest, size, positions)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(180)
    monitor.stop()
    assert not errors, errors
    assert len(results) == 30
    for _token, status, digest, size, _ in results.values():
        assert (status, digest, size) == (200, expected, 3 * 1024 * 1024)
    assert monitor.max_active == 3
    waited = [p for *_, p in results.values() if p]
    assert len(waited) >= 27
    for positions in waited:
        numbers = [e.json()["position"] for e in positions]
        assert numbers == sorted(numbers, reverse=True)  # only ever moves forward
        assert all(e.id for e in positions)
    rows = wait_until(lambda: (r := history(app)) and len(r) == 30 and all(x["outcome"] for x in r) and r,
                      timeout=15, message="30 history rows")
    assert {r["outcome"] for r in rows} == {"completed"}
    assert all(r["bytes_sent"] == 3 * 1024 * 1024 for r in rows)
    joined = [r["joined_at"] for r in rows]
    assert joined == sorted(joined)  # admitted in join order
    intervals = sorted((r["admitted_at"], r["finished_at"]) for r in rows)
    for admitted_at, _ in intervals:
        overlapping = sum(1 for a, f in intervals if a <= admitted_at < f)
        assert overlapping <= 3


def test_vanished_and_stalled_clients_free_their_slots(app, gunicorn, make_file):
    file_id, _ = make_file("big.bin", size=48 * 1024 * 1024)
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1})
    # 1) admitted but never downloads
    vanisher = new_token(server.url, file_id)
    assert wait_turn(server.url, vanisher)[1].event == "ready"
    # 2) a waiter behind it is admitted once the no-show lease ends
    staller = new_token(server.url, file_id)
    assert wait_turn(server.url, staller)[1].event == "ready"
    assert outcome_of(app, token_id(vanisher)) == "no_show"
    # 3) the staller reads a little, then stops reading with the connection open
    raw = RawDownload(server.port, f"/api/v1/downloads/{staller}")
    assert raw.status == 200 and len(raw.read(100_000)) == 100_000
    third = new_token(server.url, file_id)
    started = time.monotonic()
    assert wait_turn(server.url, third)[1].event == "ready"
    assert time.monotonic() - started < 10
    raw.close()
    assert outcome_of(app, token_id(staller)) == "stalled"
    again = requests.get(f"{server.url}/api/v1/downloads/{staller}", timeout=5)  # back of the line
    assert again.status_code == 503 and again.json()["error"]["code"] == "waiting_in_line"


def test_drop_and_resume_inside_and_outside_the_grace(app, gunicorn, make_file):
    size = 24 * 1024 * 1024
    file_id, path = make_file("big.bin", size=size)
    data = path.read_bytes()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1})
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
    first = raw.read(5_000_000)
    raw.close()
    time.sleep(1.0)  # inside RESUME_GRACE (3 s)
    response = requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=30,
                            headers={"Range": f"bytes={len(first)}-"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {len(first)}-{size - 1}/{size}"
    assert first + response.content == data
    assert outcome_of(app, token_id(token)) == "completed"
    assert requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=5).json()["error"]["code"] == "token_spent"
    # what a client's buffers may have held when it was cut off stays resumable for the grace
    tail = requests.get(f"{server.url}/api/v1/downloads/{token}", headers={"Range": "bytes=-1048576"}, timeout=5)
    assert tail.status_code == 206 and tail.content == data[-1048576:]
    time.sleep(3.1)
    tail = requests.get(f"{server.url}/api/v1/downloads/{token}", headers={"Range": "bytes=-1048576"}, timeout=5)
    assert tail.status_code == 410 and tail.json()["error"]["code"] == "token_spent"

    late = new_token(server.url, file_id)
    assert wait_turn(server.url, late)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{late}")
    raw.read(1_000_000)
    raw.close()
    assert outcome_of(app, token_id(late), timeout=15) == "abandoned"
    # its slot is gone; asking again joins the line, and with the slot free resumes at once
    response = requests.get(f"{server.url}/api/v1/downloads/{late}", headers={"Range": "bytes=1000000-"}, timeout=30)
    assert response.status_code == 206 and response.content == data[1000000:]


def test_connections_per_token_are_limited(gunicorn, make_file):
    file_id, _ = make_file("big.bin", size=32 * 1024 * 1024)
    server = gunicorn(**{**FLOW, "MAX_CONNECTIONS_PER_TOKEN": 2, "STALL_TIMEOUT": 30})
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    held = [RawDownload(server.port, f"/api/v1/downloads/{token}") for _ in range(2)]
    assert [h.status for h in held] == [200, 200]
    extra = requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=5)
    assert extra.status_code == 429 and extra.json()["error"]["code"] == "too_many_connections"
    for h in held:
        h.close()


def test_a_download_before_its_turn_waits_in_line(gunicorn, make_file):
    """A GET joins (idempotently) and answers 503 with the place and Retry-After; HEAD and the
    seed's route refuse with 409 as before."""
    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 30})
    first, second = new_token(server.url, file_id), new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{first}", timeout=5).json()["state"] == "ready"
    body = requests.post(f"{server.url}/api/v1/queue/{second}", timeout=5).json()
    assert (body["state"], body["position"]) == ("waiting", 1)
    waiting = requests.get(f"{server.url}/api/v1/downloads/{second}", timeout=5)
    assert waiting.status_code == 503 and 1 <= int(waiting.headers["Retry-After"]) <= 10
    error = waiting.json()["error"]
    assert (error["code"], error["position"], error["retry_after"]) == ("waiting_in_line", 1,
                                                                        int(waiting.headers["Retry-After"]))
    head = requests.head(f"{server.url}/api/v1/downloads/{second}", timeout=5)
    assert head.status_code == 409
    seed = requests.get(f"{server.url}/request/download/{second}", timeout=5)
    assert seed.status_code == 409 and seed.json()["error"]["code"] == "not_your_turn"
    third = new_token(server.url, file_id)  # never joined: the GET joins it, behind the second
    assert requests.get(f"{server.url}/api/v1/downloads/{third}", timeout=5).json()["error"]["position"] == 2
    assert requests.get(f"{server.url}/api/v1/downloads/{third}", timeout=5).json()["error"]["position"] == 2
    assert requests.get(f"{server.url}/api/v1/queue", timeout=5).json()["waiting"] == 2


def test_a_newcomers_first_event_counts_it(gunicorn, make_file):
    """A join publishes nothing, so the line's figures a newcomer first hears must come from its
    own join's reply: #2 of 2 waiting, never #2 of 1."""
    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 60})
    holder = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5).json()["state"] == "ready"
    for expected in (1, 2, 3):
        first = next(sse(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}"))
        assert first.event == "position"
        assert (first.json()["position"], first.json()["waiting"]) == (expected, expected)


def test_status_delete_and_summary(gunicorn, make_file):
    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 30, "WAIT_GRACE": 2})
    a, b, c = (new_token(server.url, file_id) for _ in range(3))
    for token in (a, b, c):
        requests.post(f"{server.url}/api/v1/queue/{token}", timeout=5)
    summary = requests.get(f"{server.url}/api/v1/queue", timeout=5).json()
    assert (summary["capacity"], summary["active"], summary["waiting"]) == (1, 1, 2)
    assert requests.get(f"{server.url}/api/v1/queue/{c}/status", timeout=5).json()["position"] == 2
    status_a = requests.get(f"{server.url}/api/v1/queue/{a}/status", timeout=5).json()
    assert status_a["state"] == "ready" and status_a["download_url"].startswith(f"/api/v1/downloads/{a}/")
    # c stays present by polling; b does not poll: after WAIT_GRACE it is away (its place kept,
    # not admitted), and c, present, is first
    def b_away() -> bool:
        requests.get(f"{server.url}/api/v1/queue/{c}/status", timeout=5)
        return requests.get(f"{server.url}/api/v1/queue", timeout=5).json()["away"] == 1

    wait_until(b_away, timeout=30, message="b away")
    assert requests.get(f"{server.url}/api/v1/queue/{c}/status", timeout=5).json()["position"] == 1
    left = requests.delete(f"{server.url}/api/v1/queue/{a}", timeout=5).json()
    assert left == {"left": True, "previous_state": "ready"}
    assert requests.get(f"{server.url}/api/v1/queue/{c}/status", timeout=5).json()["state"] == "ready"
    back = requests.get(f"{server.url}/api/v1/queue/{b}/status", timeout=5).json()  # a poll: b is back
    assert (back["state"], back["position"]) == ("waiting", 1)
    assert requests.delete(f"{server.url}/api/v1/queue/{a}", timeout=5).json()["left"] is False


def test_reconnecting_stream_keeps_its_place(gunicorn, make_file):
    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 30})
    holder = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    tokens = [new_token(server.url, file_id) for _ in range(3)]
    for token in tokens:
        requests.post(f"{server.url}/api/v1/queue/{token}", timeout=5)
    stream = sse(f"{server.url}/api/v1/queue/{tokens[1]}")
    first = next(stream)
    assert (first.event, first.json()["position"]) == ("position", 2)
    stream.close()
    time.sleep(1)
    again = next(sse(f"{server.url}/api/v1/queue/{tokens[1]}", headers={"Last-Event-ID": first.id}))
    assert again.json()["position"] == 2
    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    requests.delete(f"{server.url}/api/v1/queue/{tokens[0]}", timeout=5)
    _positions, last = wait_turn(server.url, tokens[1])
    assert last.event == "ready"


def test_seed_flow_with_a_plain_sse_client(gunicorn, make_file):
    file_id, path = make_file(size=200_000)
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 30})
    first = requests.get(f"{server.url}/request/generate/{file_id}", timeout=5).text
    second = requests.post(f"{server.url}/request/generate/{file_id}", timeout=5).text
    assert [e.data for e in sse(f"{server.url}/request/order/{first}")] == ["0"]
    seen = []

    def follow():
        for event in sse(f"{server.url}/request/order/{second}"):
            assert event.event == "message"
            seen.append(event.data)

    thread = threading.Thread(target=follow)
    thread.start()
    wait_until(lambda: seen, message="second client's place")
    assert seen == ["1"]
    response = requests.get(f"{server.url}/request/download/{first}", timeout=30)
    assert response.content == path.read_bytes()
    thread.join(10)
    assert seen == ["1", "0"]
    assert requests.get(f"{server.url}/request/download/{second}", timeout=30).content == path.read_bytes()


def test_queue_full_and_token_errors_over_sse(gunicorn, make_file):
    from app.services.tokens import issue_token

    from .helpers.env import SECRET

    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "MAX_QUEUE_LENGTH": 1, "ADMIT_TIMEOUT": 30})
    for _ in range(2):
        requests.post(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=5)
    full = new_token(server.url, file_id)
    event = next(sse(f"{server.url}/api/v1/queue/{full}"))
    assert event.event == "error" and event.json()["error"]["code"] == "queue_full"
    assert event.json()["error"]["retry_after"] >= 1
    posted = requests.post(f"{server.url}/api/v1/queue/{full}", timeout=5)
    assert posted.status_code == 503 and int(posted.headers["Retry-After"]) >= 1
    expired, _ = issue_token(SECRET, file_id, -1)
    event = next(sse(f"{server.url}/api/v1/queue/{expired}"))
    assert event.event == "error" and event.json()["error"]["code"] == "token_expired"
    # a token that is not one opens no stream (a stream's error event is for tokens that were)
    refused = requests.get(f"{server.url}/api/v1/queue/not-a-token", timeout=5)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "invalid_token"


def test_a_closed_stream_starts_its_grace_when_it_closes_not_at_the_next_heartbeat(gunicorn, make_file, settings):
    """20 waiters stream; 10 of them close their connections. Nothing is written to them
    meanwhile (a still line: no position moves, heartbeats every 30 s), so only watching the
    socket can tell: the 10 get a presence deadline at once, the other 10 stay held."""
    file_id, _ = make_file()
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "ADMIT_TIMEOUT": 600, "WAIT_GRACE": 600})
    holder = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    tokens = [new_token(server.url, file_id) for _ in range(20)]
    streams = [sse(f"{server.url}/api/v1/queue/{token}") for token in tokens]
    for stream in streams:
        assert next(stream).event == "position"
    client = redis.Redis.from_url(REDIS_URL)
    presence = f"{{dq:{settings['QUEUE_NAME']}}}:presence"
    ids = [token_id(token) for token in tokens]
    wait_until(lambda: all(client.zscore(presence, i) is None for i in ids), message="every stream holds its waiter")
    closed_at = time.monotonic()
    for stream in streams[:10]:
        stream.close()
    wait_until(lambda: all(client.zscore(presence, i) is not None for i in ids[:10]), timeout=10,
               message="the closed streams' graces to start")
    assert time.monotonic() - closed_at < 10  # a heartbeat (30 s) would have come later
    assert all(client.zscore(presence, i) is None for i in ids[10:])  # the open ones are still held
    for stream in streams[10:]:
        stream.close()


def test_a_worker_of_eight_connections_serves_forty_waiting_streams(app, gunicorn, make_file, settings):
    """A waiting stream is parked between its events, not one of the server's connections (a
    greenlet each): one worker that takes 8 connections at a time holds 40 waiting streams and
    still answers downloads. 10 of the 40 vanish (their turns pass unused); the other 30 are
    admitted in the order they joined, one at a time, each with its whole file."""
    file_id, path = make_file()
    expected = (200, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
    server = gunicorn(**{**FLOW, "QUEUE_CAPACITY": 1, "WORKER_CONNECTIONS": 8,
                         "MAX_PLACES_PER_CLIENT": 64}, workers=1)  # one test address holds all 40
    monitor = ActiveMonitor(REDIS_URL, settings["QUEUE_NAME"])
    holder = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5).json()["state"] == "ready"
    streams = []
    for place in range(1, 41):
        token = new_token(server.url, file_id)
        events = sse(f"{server.url}/api/v1/queue/{token}", timeout=20)  # a stream not served times out
        first = next(events)
        assert (first.event, first.json().get("position")) == ("position", place), first
        streams.append((token, events))
    for _token, events in streams[1::4]:
        events.close()
    assert download_sha(server.url, holder) == expected
    deadline = time.monotonic() + 120
    for token, events in [s for n, s in enumerate(streams) if n % 4 != 1]:
        # read at once: a turn given out of order passes unused (ADMIT_TIMEOUT 2 s) and its
        # client's download is refused
        last = next(e for e in events if e.event not in ("position", "heartbeat") or time.monotonic() > deadline)
        assert last.event == "ready", last
        assert download_sha(server.url, token) == expected
        events.close()
    monitor.stop()
    assert monitor.max_active == 1


def test_a_stream_outside_gunicorn_waits_in_its_own_thread(settings, make_file):
    """A server that cannot hand its connection over (here the test client; the dev server, TLS
    in gunicorn) runs the stream's body in its own thread: the body waits out each pause there
    and still hears its turn the moment it comes."""
    from app import create_app
    from app.config import load_config
    from app.runtime import runtime

    app = create_app(load_config(**{**settings, "QUEUE_CAPACITY": 1}))
    try:
        file_id, _ = make_file()
        client = app.test_client()
        holder, waiter = (client.post(f"/api/v1/files/{file_id}/tokens").json["token"] for _ in range(2))
        assert client.post(f"/api/v1/queue/{holder}").json["state"] == "ready"
        response = client.get(f"/api/v1/queue/{waiter}", buffered=False)
        assert "Transfer-Encoding" not in response.headers  # the server frames the body itself
        body = response.iter_encoded()
        assert next(body).startswith(b": connected")
        assert b'"position":1' in next(body)
        threading.Timer(0.5, lambda: client.delete(f"/api/v1/queue/{holder}")).start()
        began = time.monotonic()
        ready = next(body)
        assert ready.startswith(b"id: ") and b"event: ready" in ready, ready
        assert time.monotonic() - began < 10  # woken by the release, not by a heartbeat (30 s)
        response.close()
    finally:
        runtime(app).stop()
