"""Issue 9: what operators read — Prometheus metrics, JSON request and queue-event logs, start-up errors."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import requests

from app.logs import token_ref
from testbed.servers import ROOT, wait_until

from .helpers.http import download_sha, new_token, token_id

METRICS = "metrics-token-for-tests"
QUEUE_WIDE = ("download_queue_waiting", "download_queue_active", "download_queue_capacity",
              "download_queue_joins_total", "download_queue_admissions_total", "download_queue_outcomes_total",
              "download_queue_acked_bytes_total", "download_queue_wait_seconds_count",
              "download_queue_sent_bytes_total")


def scrape(base: str) -> str:
    """One scrape on a new connection (so the two workers take turns answering)."""
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS}",
                                                       "Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.text


def samples(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def value(text: str, prefix: str) -> float:
    """The sum of every sample whose name (with labels) starts with ``prefix``."""
    return sum(v for name, v in samples(text).items() if name.startswith(prefix))


def lint(text: str) -> list[str]:
    """What ``promtool check metrics`` reports, checked with the Prometheus client's own parser:
    every family documented and typed once, counters named ``_total``, histograms cumulative
    with ``+Inf`` equal to the count."""
    from prometheus_client.parser import text_string_to_metric_families

    problems, seen = [], set()
    for family in text_string_to_metric_families(text):  # raises on a malformed exposition
        if family.name in seen:
            problems.append(f"{family.name}: described twice")
        seen.add(family.name)
        if not family.documentation:
            problems.append(f"{family.name}: no HELP")
        if family.type == "unknown":
            problems.append(f"{family.name}: no TYPE")
        if family.type == "counter" and any(not s.name.endswith(("_total", "_created")) for s in family.samples):
            problems.append(f"{family.name}: a counter sample not named _total")
        if family.type == "histogram":
            series: dict[tuple, list[tuple[float, float]]] = {}
            counts = {}
            for sample in family.samples:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                if sample.name.endswith("_bucket"):
                    series.setdefault(labels, []).append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_count"):
                    counts[labels] = sample.value
            for labels, buckets in series.items():
                values = [v for _, v in sorted(buckets)]
                if values != sorted(values) or sorted(buckets)[-1] != (float("inf"), counts.get(labels)):
                    problems.append(f"{family.name}{dict(labels)}: buckets not cumulative up to the count")
    return problems


def queue_wide(text: str) -> dict[str, float]:
    return {name: v for name, v in samples(text).items() if name.startswith(QUEUE_WIDE)}


def test_metrics_follow_a_real_queue_and_agree_across_workers(gunicorn, make_file, tmp_path):
    file_id, path = make_file("f.bin", size=3 << 20)
    server = gunicorn(workers=2, QUEUE_CAPACITY=1, METRICS_TOKEN=METRICS)
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer no"}, timeout=10).status_code == 403
    before = scrape(server.url)
    assert value(before, "download_queue_joins_total") == 0

    first, second = new_token(server.url, file_id), new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{first}", timeout=10).json()["state"] == "ready"
    assert requests.post(f"{server.url}/api/v1/queue/{second}", timeout=10).json()["state"] == "waiting"
    moving = scrape(server.url)
    assert value(moving, "download_queue_waiting") == 1 and value(moving, "download_queue_active") == 1
    assert value(moving, "download_queue_joins_total") == 2
    assert value(moving, "download_queue_admissions_total") == 1

    status, digest, size = download_sha(server.url, first)
    assert (status, digest) == (200, hashlib.sha256(path.read_bytes()).hexdigest())
    # the download completes (the client acknowledged every byte): the slot passes to the second
    wait_until(lambda: value(scrape(server.url), 'download_queue_outcomes_total{outcome="completed"}') == 1,
               message="completion counted")
    done = scrape(server.url)
    assert value(done, "download_queue_admissions_total") == 2
    assert value(done, "download_queue_acked_bytes_total") == size
    assert value(done, "download_queue_sent_bytes_total") == size  # this host, summed over its workers
    assert value(done, "download_queue_wait_seconds_count") == 2
    assert value(done, "download_queue_download_duration_seconds_count") == 1
    assert value(done, 'download_queue_refusals_total{reason="unauthorized"}') == 1
    assert value(done, "download_queue_redis_script_duration_seconds_count") > 0

    # whichever worker answers, the figures are the same
    scrapes = [queue_wide(scrape(server.url)) for _ in range(12)]
    assert all(s == scrapes[0] for s in scrapes)

    assert lint(done) == []


def test_streams_per_process_are_counted_and_forgotten(gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    server = gunicorn(workers=1, QUEUE_CAPACITY=1, METRICS_TOKEN=METRICS)
    holder = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=10)
    streams = [requests.get(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", stream=True, timeout=30)
               for _ in range(3)]
    wait_until(lambda: value(scrape(server.url), "download_queue_sse_streams") == 3, message="3 open streams")
    for response in streams:
        response.close()
    # the server watches each stream's socket: it learns a client vanished as it closes
    wait_until(lambda: value(scrape(server.url), "download_queue_sse_streams") == 0, timeout=10,
               interval=0.5, message="streams closed")


def test_json_logs_carry_real_bytes_request_ids_and_no_token(gunicorn, make_file, tmp_path):
    file_id, path = make_file("f.bin", size=2 << 20)
    server = gunicorn(workers=2, QUEUE_CAPACITY=1, LOG_FORMAT="json", TRUSTED_PROXY_COUNT=1)
    token = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{token}", timeout=10).json()["state"] == "ready"
    response = requests.get(f"{server.url}/api/v1/downloads/{token}", headers={"X-Request-ID": "req-42"},
                            timeout=30)
    assert response.status_code == 200 and len(response.content) == path.stat().st_size
    assert response.headers["X-Request-ID"] == "req-42"
    requests.get(f"{server.url}/api/v1/queue/{token}x/status", timeout=10)  # an invalid token, logged too
    log_path = tmp_path / "gunicorn-0.log"

    def lines() -> list[dict]:
        return [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]

    ref = token_ref(token_id(token))
    wait_until(lambda: any(e.get("event") == "finished" for e in lines()), message="the finished event logged")
    server.stop()
    text = log_path.read_text()
    assert token not in text and token_id(token) not in text  # neither the token nor its id
    records = lines()
    download = [r for r in records if r.get("route") == "/api/v1/downloads/<token>"]
    assert len(download) == 1
    assert download[0]["bytes"] == path.stat().st_size  # what sendfile delivered, not 0
    assert download[0]["status"] == 200 and download[0]["method"] == "GET"
    assert download[0]["request_id"] == "req-42" and download[0]["duration_ms"] > 0
    events = {r["event"]: r for r in records if r.get("token") == ref}
    assert set(events) == {"joined", "admitted", "started", "finished"}
    assert events["finished"]["outcome"] == "completed"
    assert {r["logger"] for r in records} >= {"gunicorn.error", "download_queue.access", "app.history.recorder"}


def test_bad_settings_stop_gunicorn_with_one_line(tmp_path):
    env = {**os.environ, "APP_ENV": "test", "WEB_CONCURRENCY": "two"}
    result = subprocess.run([sys.executable, "-m", "app.serve"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "download-queue: configuration error: WEB_CONCURRENCY must be an integer, got 'two'"]
    for name, bad, says in (("TOKEN_RATE_LIMIT", "60/minuet", "TOKEN_RATE_LIMIT must be a rate limit"),
                            ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, text"),
                            ("ACCESS_LOG", "maybe", "ACCESS_LOG must be one of")):
        result = subprocess.run([sys.executable, "-m", "app.serve"], cwd=ROOT,
                                env={**env, "WEB_CONCURRENCY": "1", name: bad}, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert says in result.stderr
