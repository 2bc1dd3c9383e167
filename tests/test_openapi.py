"""The OpenAPI document matches the routes, and Schemathesis finds nothing against the live service:
every check (``--checks all``) in every phase, the stateful one included.

Kept out, each for its reason (the settings themselves are in ``tests/schemathesis.toml``):
- the ``use_after_free`` check: leaving the line (DELETE) gives back a place, not the token,
  whose status stays readable and which may join again;
- ``positive_data_acceptance`` also expects 410: a well-formed token may be used up;
- the admin event stream (``/api/v1/admin/events``): it never ends, so a fuzzer's request would
  only wait for its timeout.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from app.http.openapi import document

KEY = "admin-key-for-schemathesis"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"


def served_operations(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every route the app answers, HEAD included (Flask adds it to GET)."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            operations |= {(path, method.lower()) for method in rule.methods - {"OPTIONS"}}
    return operations


def test_every_route_is_documented_and_every_documented_route_is_served(app, client):
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    served = served_operations(app)
    assert {op for op in served if op[1] != "head"} == {op for op in documented if op[1] != "head"}
    assert {op for op in documented if op[1] == "head"} <= served  # HEAD is described where it matters
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.json["openapi"] == "3.1.0"
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            assert "500" in operation["responses"], (path, method)
            assert operation["summary"], (path, method)


def schemathesis(base: str, workdir: Path, *selection: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG), "run",
               f"{base}/api/v1/openapi.json", "--checks", "all",
               "--exclude-checks", "use_after_free",  # the config's switch does not reach the stateful phase
               "--max-examples", "25", "--seed", "20261126",
               "--header", f"Authorization: Bearer {KEY}", "--generation-database", "none", "--no-color",
               *selection]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


def test_schemathesis_finds_no_server_error_and_no_response_off_the_document(gunicorn, make_file, settings, tmp_path):
    make_file("a.bin", size=64 << 10)
    # every join is admitted at once: a waiting stream would only end at the fuzzer's request timeout
    public = gunicorn(workers=2, QUEUE_CAPACITY=100_000, ADMIN_API_KEY=KEY, METRICS_TOKEN=KEY)
    result = schemathesis(public.url, tmp_path, "--exclude-tag", "admin")
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Stateful" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1], result.stdout[-3000:]
    print(result.stdout.split("SUMMARY")[-1])  # the counts, shown by pytest -rP

    # the admin operations (pause, drain, settings) on a queue of their own, so they do not
    # turn the public run's joins into "queue_draining" answers
    admin = gunicorn(workers=1, QUEUE_NAME=f"{settings['QUEUE_NAME']}-admin", ADMIN_API_KEY=KEY)
    result = schemathesis(admin.url, tmp_path, "--include-tag", "admin", "--exclude-path", "/api/v1/admin/events")
    assert result.returncode == 0, result.stdout[-6000:]
    print(result.stdout.split("SUMMARY")[-1])
