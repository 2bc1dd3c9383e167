"""Issue 19: terminals wait in line by themselves. A GET of the download URL before the token's
turn joins the line and answers 503 with Retry-After; curl, wget and aria2c retry on it (each
with the one-liner the README gives) and get the file when a held slot frees."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import pytest
import requests

from testbed.servers import wait_until

from .helpers.http import new_token

# WAIT_GRACE 6 s: Retry-After is a third of it (2 s), so the test is quick; wget's own backoff
# (up to --waitretry, 10 s by default) may outlast the grace: the away policy keeps its place
TERMINAL = dict(QUEUE_CAPACITY=1, ADMIT_TIMEOUT=120, WAIT_GRACE=6, MAX_PLACES_PER_CLIENT=0)


def asked_to_wait(base: str) -> float:
    """How many GETs the service answered ``waiting_in_line`` (every worker)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r'^download_queue_refusals_total\{reason="waiting_in_line"\} (\S+)$',
                                             text, re.M))


def command(tool: str, url: str) -> list[str]:
    """The README's one-liners (plus quiet flags)."""
    return {
        "curl": ["curl", "-sS", "--retry", "1000", "-fJO", url],
        "wget": ["wget", "-q", "--retry-on-http-error=503", "-t", "0", url],
        "aria2c": ["aria2c", "-q", "--retry-wait=2", "--max-tries=0", url],
    }[tool]


@pytest.mark.parametrize("tool", ["curl", "wget", "aria2c"])
def test_a_terminal_waits_behind_a_held_slot_then_downloads(tool, gunicorn, make_file, tmp_path):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (scripts/test.sh installs it)")
    file_id, path = make_file("disk image.iso", size=3 << 20)
    server = gunicorn(**TERMINAL)
    holder = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5).json()["state"] == "ready"
    token = new_token(server.url, file_id)
    url = f"{server.url}/api/v1/downloads/{token}/disk%20image.iso"
    out = tmp_path / tool
    out.mkdir()
    process = subprocess.Popen(command(tool, url), cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def status() -> dict:
            return requests.get(f"{server.url}/api/v1/queue/{token}/status", timeout=5).json()

        # it joined by itself, and keeps asking (each time told to wait) without giving up
        wait_until(lambda: asked_to_wait(server.url) >= 3, timeout=60, message=f"{tool} asked three times")
        assert status()["state"] == "waiting"
        seen = requests.get(f"{server.url}/api/v1/queue", timeout=5).json()
        assert (seen["waiting"], seen["active"]) == (1, 1)
        assert process.poll() is None, process.stdout.read().decode()
        requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)  # the slot frees
        assert process.wait(timeout=90) == 0, process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
    saved = [p for p in out.iterdir() if p.is_file()]
    assert [p.name for p in saved] == ["disk image.iso"]
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert status()["state"] == "done"
