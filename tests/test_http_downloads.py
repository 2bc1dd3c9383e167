"""Issue 4: downloads with real clients (curl, wget, aria2c), ranges, HEAD and bad input."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.services.tokens import issue_token, verify_token
from testbed.servers import wait_until

from .helpers.env import SECRET
from .helpers.http import RawDownload, connections_held, new_token, sse, wait_turn

SERVE = dict(QUEUE_CAPACITY=2, ADMIT_TIMEOUT=30, STALL_TIMEOUT=10, RESUME_GRACE=30, WAIT_GRACE=30,
             RESUME_TAIL=1 << 20)


@pytest.fixture
def served(gunicorn, make_file):
    """A 16 MiB file and a server; ``admitted()`` returns a token whose turn it is."""
    file_id, path = make_file("archive.tar.gz", size=16 * 1024 * 1024, display="Résumé 2026 — final.tar.gz")
    server = gunicorn(**SERVE)

    def admitted() -> str:
        token = new_token(server.url, file_id)
        assert wait_turn(server.url, token)[1].event == "ready"
        return token

    return server, file_id, path, admitted


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_headers_of_a_download(served):
    server, _, path, admitted = served
    token = admitted()
    head = requests.head(f"{server.url}/api/v1/downloads/{token}", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(path.stat().st_size)
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["ETag"].startswith('"') and head.headers["Last-Modified"].endswith("GMT")
    assert head.headers["Content-Disposition"] == (
        "attachment; filename=\"Resume 2026  final.tar.gz\"; "
        "filename*=UTF-8''R%C3%A9sum%C3%A9%202026%20%E2%80%94%20final.tar.gz")
    response = requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=30)
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == sha(path)


def test_ranges(served):
    server, _, path, admitted = served
    data = path.read_bytes()
    size = len(data)
    token = admitted()
    url = f"{server.url}/api/v1/downloads/{token}"
    unsatisfiable = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=5)
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{size}"
    assert unsatisfiable.json()["error"]["code"] == "range_not_satisfiable"
    head = requests.head(url, headers={"Range": "bytes=10-19"}, timeout=5)
    assert head.status_code == 206 and head.headers["Content-Length"] == "10"
    # ignored ranges: malformed, other units, several ranges -> the whole file (RFC 9110)
    for header in ("bytes=abc", "items=0-5", "bytes=0-1,5-6", "bytes=5-1"):
        response = requests.get(url, headers={"Range": header}, stream=True, timeout=5)
        assert response.status_code == 200, header
        assert response.headers["Content-Length"] == str(size)
        response.close()
    # the last two run to the file's end: the first of them completes the token (a resume), the
    # second is served from the completed token's resumable tail
    cases = {
        "bytes=0-99": (206, data[:100], f"bytes 0-99/{size}"),
        "bytes=8388608-8388707": (206, data[8388608:8388708], f"bytes 8388608-8388707/{size}"),
        "bytes=-10": (206, data[-10:], f"bytes {size - 10}-{size - 1}/{size}"),
        f"bytes={size - 5}-{size + 100}": (206, data[-5:], f"bytes {size - 5}-{size - 1}/{size}"),
    }
    for header, (status, body, content_range) in cases.items():
        response = requests.get(url, headers={"Range": header}, timeout=30)
        assert (response.status_code, response.headers["Content-Range"]) == (status, content_range), header
        assert response.content == body, header


def test_if_range(served):
    server, _, path, admitted = served
    data = path.read_bytes()
    token = admitted()
    url = f"{server.url}/api/v1/downloads/{token}"
    head = requests.head(url, timeout=5)
    fresh = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": head.headers["ETag"]}, timeout=5)
    assert fresh.status_code == 206 and fresh.content == data[:10]
    dated = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": head.headers["Last-Modified"]}, timeout=5)
    assert dated.status_code == 206
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, stream=True, timeout=5)
    assert stale.status_code == 200 and stale.headers["Content-Length"] == str(len(data))
    stale.close()


def test_bad_tokens_never_5xx(served):
    server, file_id, _, admitted = served
    expired, _ = issue_token(SECRET, file_id, -1)
    unknown_file, _ = issue_token(SECRET, 987654, 600)
    token = admitted()
    assert requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=30).status_code == 200
    cases = {
        "garbled": (403, "invalid_token"),
        token + "x": (403, "invalid_token"),
        expired: (410, "token_expired"),
        unknown_file: (404, "unknown_file"),
        token: (410, "token_spent"),
    }
    for bad, (status, code) in cases.items():
        for method in ("GET", "HEAD"):
            response = requests.request(method, f"{server.url}/api/v1/downloads/{bad}", timeout=5)
            assert response.status_code == status, (bad, method, response.text)
            if method == "GET":
                assert response.json()["error"]["code"] == code
    fresh = requests.head(f"{server.url}/api/v1/downloads/{new_token(server.url, file_id)}", timeout=5)
    assert fresh.status_code == 409  # HEAD never joins (a GET would: it waits in line)
    assert requests.post(f"{server.url}/api/v1/queue/{token}", timeout=5).json()["error"]["code"] == "token_spent"
    event = next(sse(f"{server.url}/api/v1/queue/{token}"))
    assert event.event == "error" and event.json()["error"]["code"] == "token_spent"
    assert requests.get(f"{server.url}/api/v1/queue/{token}/status", timeout=5).json()["state"] == "done"
    assert requests.get(f"{server.url}/api/v1/queue/{expired}/status", timeout=5).json()["state"] == "expired"


@pytest.mark.parametrize("tool", ["curl", "wget", "aria2c"])
def test_real_clients_resume_byte_identical(served, settings, redis_client, tmp_path, tool):
    """Each tool is interrupted mid-download, then resumes under the same token."""
    server, _, path, admitted = served
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (scripts/test.sh installs it)")
    token = admitted()
    url = f"{server.url}/api/v1/downloads/{token}"
    out = tmp_path / "out.bin"
    commands = {
        "curl": ["curl", "-sS", "-f", "-C", "-", "-o", str(out), url],
        "wget": ["wget", "-q", "-c", "-O", str(out), url],
        "aria2c": ["aria2c", "-q", "-x4", "-s4", "-k1M", "--continue=true", "--auto-file-renaming=false",
                   "-d", str(tmp_path), "-o", "out.bin", url],
    }
    # slow enough (16 MiB at 512 KiB/s: 32 s) that a busy machine cannot let it finish first
    slow = {"curl": ["--limit-rate", "512K"], "wget": ["--limit-rate=512k"],
            "aria2c": ["--max-overall-download-limit=512K"]}
    first = subprocess.Popen(commands[tool][:1] + slow[tool] + commands[tool][1:])
    wait_until(lambda: out.exists() and out.stat().st_size > 0, message=f"{tool} started writing")
    time.sleep(0.5)
    first.send_signal(signal.SIGINT)
    first.wait(10)
    partial = out.stat().st_size if out.exists() else 0
    assert 0 < partial < path.stat().st_size or tool == "aria2c"
    # resume once the server has closed every interrupted connection, also those aria2c had sent
    # but the server had not started yet (aria2c reopens 4 at once, and MAX_CONNECTIONS_PER_TOKEN
    # is 4), and the queue has heard of it
    engine = QueueEngine(redis_client, str(settings["QUEUE_NAME"]), QueueSettings())
    tid = verify_token(SECRET, token).token_id
    wait_until(lambda: connections_held(server.port) == 0 and engine.status([tid]).tokens[tid].state == "paused",
               message="interrupted download closed and paused")
    subprocess.run(commands[tool], check=True, timeout=120)
    assert sha(out) == sha(path)
    assert requests.get(url, timeout=5).json()["error"]["code"] == "token_spent"


def test_bandwidth_limit_is_shared_and_respected(gunicorn, make_file):
    limit = 8 * 1024 * 1024
    file_id, path = make_file("big.bin", size=24 * 1024 * 1024)
    server = gunicorn(**{**SERVE, "BANDWIDTH_LIMIT": limit})
    tokens = []
    for _ in range(2):
        token = new_token(server.url, file_id)
        assert wait_turn(server.url, token)[1].event == "ready"
        tokens.append(token)
    finished = {}

    def fetch(token):
        response = requests.get(f"{server.url}/api/v1/downloads/{token}", timeout=60)
        finished[token] = (time.monotonic(), len(response.content))

    began = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    total = sum(n for _, n in finished.values())
    elapsed = max(t for t, _ in finished.values()) - began
    assert total == 2 * path.stat().st_size
    assert total / elapsed <= limit * 1.10  # never above the limit (slower machines only lower it)
    ends = sorted(t for t, _ in finished.values())
    assert ends[1] - ends[0] < 0.25 * elapsed  # shared fairly: both finish together


def test_sigterm_ends_open_streams_promptly(gunicorn, make_file):
    file_id, _ = make_file()
    server = gunicorn(**{**SERVE, "QUEUE_CAPACITY": 1})
    requests.post(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=5)
    ended = []

    def listen():
        for _ in sse(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=60):
            pass
        ended.append(time.monotonic())

    threads = [threading.Thread(target=listen) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stopped_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(20)
    for thread in threads:
        thread.join(5)
    assert len(ended) == 6
    assert max(ended) - stopped_at < 5  # not the 30 s graceful timeout
    assert server.proc.returncode == 0


def test_killed_worker_slot_is_reclaimed_and_recorded(app, gunicorn, make_file):
    from .helpers.http import token_id
    from .helpers.queue import outcome_of

    file_id, _ = make_file("big.bin", size=64 * 1024 * 1024)
    server = gunicorn(**{**SERVE, "QUEUE_CAPACITY": 1, "STALL_TIMEOUT": 2}, workers=2)
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
    raw.read(200_000)
    victim = server.serving()
    assert victim
    for pid in victim:
        subprocess.run(["kill", "-9", str(pid)], check=True)
    next_token = new_token(server.url, file_id)
    assert wait_turn(server.url, next_token, timeout=30)[1].event == "ready"
    raw.close()
    assert outcome_of(app, token_id(token), timeout=15) == "stalled"


def test_x_accel_redirect_behind_nginx(app, gunicorn, make_file, tmp_path):
    from testbed.servers import Nginx

    file_id, path = make_file("video.mp4", size=6 * 1024 * 1024)
    server = gunicorn(**{**SERVE, "X_ACCEL_REDIRECT": "/protected"})
    nginx = Nginx(tmp_path, f"""
        location /protected/ {{ internal; alias {app.config['FILES_ROOT']}/; }}
        location / {{ proxy_pass {server.url}; proxy_buffering off; proxy_http_version 1.1; }}
    """)
    try:
        token = new_token(nginx.url, file_id)
        assert wait_turn(nginx.url, token)[1].event == "ready"
        ranged = requests.get(f"{nginx.url}/api/v1/downloads/{token}", headers={"Range": "bytes=0-1048575"}, timeout=30)
        assert ranged.status_code == 206 and ranged.content == path.read_bytes()[:1048576]
        rest = requests.get(f"{nginx.url}/api/v1/downloads/{token}", headers={"Range": "bytes=1048576-"}, timeout=30)
        assert rest.status_code == 206
        assert hashlib.sha256(ranged.content + rest.content).hexdigest() == sha(path)
        assert rest.headers["Content-Disposition"] == 'attachment; filename="video.mp4"'
        spent = requests.get(f"{nginx.url}/api/v1/downloads/{token}", timeout=5)
        assert spent.status_code == 410 and spent.json()["error"]["code"] == "token_spent"
        direct = requests.get(f"{nginx.url}/protected/video.mp4", timeout=5)
        assert direct.status_code == 404  # the internal location is not reachable from outside
    finally:
        nginx.stop()


def test_a_slot_taken_back_mid_transfer_ends_quietly(gunicorn, make_file, tmp_path):
    file_id, _ = make_file("big.bin", size=64 * 1024 * 1024)
    server = gunicorn(**SERVE)
    token = new_token(server.url, file_id)
    assert wait_turn(server.url, token)[1].event == "ready"
    raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
    raw.read(1_000_000)
    assert requests.delete(f"{server.url}/api/v1/queue/{token}", timeout=5).json()["left"] is True
    received = 1_000_000
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (chunk := raw.read(256 << 10)):  # a slow reader
        received += len(chunk)
        time.sleep(0.05)
    raw.close()
    assert received < 64 * 1024 * 1024  # the transfer was cut, and the client was not left hanging
    log = (tmp_path / "gunicorn-0.log").read_text()
    wait_until(lambda: "download slot reclaimed" in (tmp_path / "gunicorn-0.log").read_text(), message="log")
    assert "Traceback" not in log and "Error handling request" not in log


def test_conditional_requests_follow_rfc_9110(served):
    server, _, _path, admitted = served
    token = admitted()
    url = f"{server.url}/api/v1/downloads/{token}"
    head = requests.head(url, timeout=5)
    etag, modified = head.headers["ETag"], head.headers["Last-Modified"]
    long_ago, future = "Sat, 01 Jan 2000 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f"W/{etag}"}, {"If-None-Match": f'"x", {etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified}, {"If-Modified-Since": future}):
        for method in ("GET", "HEAD"):
            response = requests.request(method, url, headers=headers, timeout=5)
            assert response.status_code == 304, (headers, method)
            assert response.content == b"" and response.headers["ETag"] == etag
    # a current copy costs nothing: the token was not spent and no download started
    assert requests.get(f"{server.url}/api/v1/queue/{token}/status", timeout=5).json()["state"] == "ready"
    for headers in ({"If-Match": '"other"'}, {"If-Match": f"W/{etag}"}, {"If-Unmodified-Since": long_ago},
                    {"If-Match": '"other"', "If-None-Match": etag}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 412, headers
        assert response.json()["error"]["code"] == "precondition_failed"
    for headers in ({"If-Match": etag}, {"If-Match": "*"}, {"If-Unmodified-Since": future},
                    {"If-None-Match": '"other"'}, {"If-Modified-Since": long_ago},
                    {"If-None-Match": '"other"', "If-Modified-Since": future}):  # the tag decides, not the date
        assert requests.head(url, headers=headers, timeout=5).status_code == 200, headers
    weak = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": f"W/{etag}"}, stream=True, timeout=5)
    assert weak.status_code == 200  # If-Range compares strongly: a weak tag means the whole file
    weak.close()


def test_wget_without_flags_saves_the_file_under_its_name(served, tmp_path):
    server, file_id, path, _ = served
    if shutil.which("wget") is None:
        pytest.fail("wget is not installed (scripts/test.sh installs it)")
    issued = requests.post(f"{server.url}/api/v1/files/{file_id}/tokens", timeout=5).json()
    assert wait_turn(server.url, issued["token"])[1].event == "ready"
    into = tmp_path / "wget"
    into.mkdir()
    subprocess.run(["wget", "-q", server.url + issued["download_url"]], cwd=into, check=True, timeout=60)
    saved = list(into.iterdir())
    assert [p.name for p in saved] == ["Résumé 2026 — final.tar.gz"]
    assert sha(saved[0]) == sha(path)


def test_cache_headers_say_what_may_be_stored(served):
    server, file_id, _, admitted = served
    token = admitted()

    def get(path: str, **kwargs) -> requests.Response:
        return requests.get(server.url + path, timeout=5, **kwargs)

    for live in ("/api/v1/queue", f"/api/v1/queue/{token}/status", "/healthz", "/api/v1/queue/garbled/status"):
        assert get(live).headers["Cache-Control"] == "no-store", live
    issued = requests.post(f"{server.url}/api/v1/files/{file_id}/tokens", timeout=5)
    assert issued.headers["Cache-Control"] == "no-store" and "Retry-After" not in issued.headers
    assert requests.head(f"{server.url}/api/v1/downloads/{token}", timeout=5).headers["Cache-Control"] == "no-store"
    page = get(f"/files/{file_id}")
    assert page.headers["Cache-Control"] == "max-age=60"
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert len(assets) >= 3 and all("?v=" in a for a in assets)
    for asset in assets:
        response = get(asset)
        assert response.status_code == 200, asset
        assert response.headers["Cache-Control"] == "max-age=31536000, immutable" and "Expires" not in response.headers
    icon = get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")


# a token is spent by a complete download: REDbot's own follow-up ranged request on the same URL
# meets 410, which a single-use credential must answer
SINGLE_USE = {"RANGE_STATUS"}


def redbot_notes(url: str) -> list[dict]:
    """REDbot's warnings and errors about one URL."""
    redbot = str(Path(sys.executable).parent / "redbot")
    out = subprocess.run([redbot, "-o", "har", url], capture_output=True, text=True, timeout=120, check=True)
    notes = json.loads(out.stdout)["log"]["entries"][0]["_red_messages"]
    return [n for n in notes if n["level"] in ("WARN", "BAD")]


def test_redbot_finds_nothing_to_fix(served):
    server, file_id, _, admitted = served
    page = requests.get(f"{server.url}/files/{file_id}", timeout=5).text
    asset = re.findall(r'src="(/static/[^"]+)"', page)[0]
    for path in ("/", f"/files/{file_id}", "/api/v1/queue", "/healthz", "/favicon.ico", asset):
        assert redbot_notes(server.url + path) == [], path
    token = admitted()  # a fresh token for the probe
    download = requests.post(f"{server.url}/api/v1/queue/{token}", timeout=5).json()["download_url"]
    notes = redbot_notes(server.url + download)
    assert [n for n in notes if n["note_id"] not in SINGLE_USE] == [], notes
