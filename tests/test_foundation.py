"""Issue 2: configuration, catalog CLI, signed tokens, errors and health against real services."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import ConfigError, load_config, normalize_database_url
from app.errors import InvalidToken, TokenExpired
from app.services.tokens import issue_token, verify_token
from testbed.servers import ROOT, free_port

from .helpers.env import SECRET


def token_for(client, file_id, **headers):
    return client.post(f"/api/v1/files/{file_id}/tokens", headers=headers)


def test_token_round_trip(client, make_file):
    file_id, _ = make_file()
    response = token_for(client, file_id)
    assert response.status_code == 201
    body = response.get_json()
    token = body["token"]
    assert body["file_id"] == file_id
    assert body["queue_url"] == f"/api/v1/queue/{token}"
    assert body["status_url"] == f"/api/v1/queue/{token}/status"
    assert body["download_url"] == f"/api/v1/downloads/{token}/data.bin"  # what wget saves it as
    assert body["expires_at"].endswith("Z")
    assert response.headers["Cache-Control"] == "no-store" and "Retry-After" not in response.headers
    claims = verify_token(SECRET, token, file_id=file_id)
    assert claims.file_id == file_id and claims.ttl > 3000
    assert client.get(body["status_url"]).get_json()["state"] == "not_queued"


def test_issuing_writes_nothing_to_redis_or_database(app, client, make_file, redis_client):
    file_id, _ = make_file()
    prefix = "{dq:" + app.config["QUEUE_NAME"] + "}"
    with app.app_context():
        from app.extensions import db

        before = db.session.execute(sa.text("SELECT count(*) FROM downloads")).scalar()
    for _ in range(3):
        assert token_for(client, file_id).status_code == 201
    assert list(redis_client.scan_iter(match=prefix + "*")) == []
    with app.app_context():
        assert db.session.execute(sa.text("SELECT count(*) FROM downloads")).scalar() == before


def test_tokens_are_unique(client, make_file):
    file_id, _ = make_file()
    tokens = {token_for(client, file_id).get_json()["token"] for _ in range(5)}
    assert len(tokens) == 5


def test_tampered_token_is_invalid(client, make_file):
    file_id, _ = make_file()
    token = token_for(client, file_id).get_json()["token"]
    for i in (0, len(token) // 2, len(token) - 1):
        # a last base64 character carries unused low bits: change the high ones (A..D decode alike)
        flipped = token[:i] + ("A" if token[i] not in "ABCD" else "Q") + token[i + 1:]
        response = client.get(f"/api/v1/queue/{flipped}/status")
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "invalid_token"
    assert client.get("/api/v1/queue/garbage/status").get_json()["error"]["code"] == "invalid_token"


def test_expired_token(client, make_file):
    file_id, _ = make_file()
    token, _ = issue_token(SECRET, file_id, -5)
    with pytest.raises(TokenExpired):
        verify_token(SECRET, token)
    response = client.post(f"/api/v1/queue/{token}")
    assert response.status_code == 410
    assert response.get_json()["error"]["code"] == "token_expired"
    response = client.get(f"/api/v1/downloads/{token}")
    assert response.status_code == 410


def test_token_for_one_file_refused_for_another(make_file):
    a, _ = make_file("a.bin")
    b, _ = make_file("b.bin")
    token, _ = issue_token(SECRET, a, 60)
    assert verify_token(SECRET, token, file_id=a).file_id == a
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token, file_id=b)


def test_private_file_needs_the_issuer_key(settings, make_file):
    app = create_app(load_config(**settings, ISSUER_API_KEY="s3cret-issuer"))
    client = app.test_client()
    file_id, _ = make_file(public=False)
    missing = token_for(client, file_id)
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "unauthorized"
    wrong = token_for(client, file_id, Authorization="Bearer nope")
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "forbidden"
    right = token_for(client, file_id, Authorization="Bearer s3cret-issuer")
    assert right.status_code == 201
    assert client.get(f"/request/generate/{file_id}").status_code == 401


def test_unknown_file(client):
    response = token_for(client, 999999)
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": "unknown_file", "message": "No file with id 999999."}}


def test_rate_limit(settings, make_file):
    app = create_app(load_config(**settings, TOKEN_RATE_LIMIT="3/minute"))
    client = app.test_client()
    file_id, _ = make_file()
    codes = [token_for(client, file_id).status_code for _ in range(3)]
    assert codes == [201, 201, 201]
    limited = token_for(client, file_id)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert client.get(f"/request/generate/{file_id}").status_code == 429


def test_seed_generate_route(client, make_file):
    file_id, _ = make_file()
    for method in ("get", "post"):
        response = getattr(client, method)(f"/request/generate/{file_id}")
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        assert verify_token(SECRET, response.get_data(as_text=True)).file_id == file_id


def test_errors_are_json(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    response = client.put("/api/v1/files/1/tokens")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_cli_add_list_remove(app, tmp_path):
    runner = app.test_cli_runner()
    root = app.config["FILES_ROOT"]
    (tmp_path / "files" / "sub").mkdir()
    (tmp_path / "files" / "sub" / "movie.mp4").write_bytes(b"x" * 1000)
    result = runner.invoke(args=["files", "add", "sub/movie.mp4", "--name", "Movie", "--public"])
    assert result.exit_code == 0, result.output
    file_id = int(result.output.strip().splitlines()[-1])
    listed = runner.invoke(args=["files", "list"]).output
    sha = hashlib.sha256(b"x" * 1000).hexdigest()
    assert f"{file_id}\tpublic\t1000\t{sha}\tMovie\tsub/movie.mp4" in listed
    absolute = runner.invoke(args=["files", "add", os.path.join(root, "sub", "movie.mp4")])
    assert absolute.exit_code != 0 and "already registered" in absolute.output
    outside = runner.invoke(args=["files", "add", "../../etc/passwd"])
    assert outside.exit_code != 0 and "outside FILES_ROOT" in outside.output
    missing = runner.invoke(args=["files", "add", "nope.bin"])
    assert missing.exit_code != 0 and "no such file" in missing.output
    removed = runner.invoke(args=["files", "remove", str(file_id)])
    assert removed.exit_code == 0
    assert runner.invoke(args=["files", "list"]).output.strip() == ""
    again = runner.invoke(args=["files", "remove", str(file_id)])
    assert again.exit_code != 0 and "No file with id" in again.output


def test_cli_upload_and_verify_on_local_files(app, tmp_path):
    runner = app.test_cli_runner()
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(os.urandom(300_000))
    uploaded = runner.invoke(args=["files", "upload", str(source), "--public"])
    assert uploaded.exit_code == 0, uploaded.output
    file_id = int(uploaded.output.strip().splitlines()[-1])
    copy = Path(app.config["FILES_ROOT"]) / "elsewhere.bin"
    assert copy.read_bytes() == source.read_bytes()  # copied into FILES_ROOT, checked on the way
    again = runner.invoke(args=["files", "upload", str(source)])
    assert again.exit_code != 0 and "already exists" in again.output
    assert runner.invoke(args=["files", "verify"]).exit_code == 0
    copy.write_bytes(os.urandom(300_000))  # same size, other bytes
    bad = runner.invoke(args=["files", "verify", str(file_id)])
    assert bad.exit_code == 1 and "WITHDRAWN" in bad.output and "sha256 mismatch" in bad.output
    assert "withdrawn: sha256 mismatch" in runner.invoke(args=["files", "list"]).output
    copy.write_bytes(source.read_bytes())
    assert runner.invoke(args=["files", "verify", str(file_id)]).exit_code == 0
    assert "withdrawn" not in runner.invoke(args=["files", "list"]).output
    copy.unlink()
    gone = runner.invoke(args=["files", "verify", str(file_id)])
    assert gone.exit_code == 1 and "no such file" in gone.output


def test_cli_records_size_type_and_sha256(app, make_file):
    import hashlib

    file_id, path = make_file("report.pdf", size=4096)
    with app.app_context():
        from app.catalog.service import get_file

        record = get_file(file_id)
        assert record.size == 4096
        assert record.content_type == "application/pdf"
        assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("given", [
    "postgres://postgres:postgres@127.0.0.1:5432/test",
    "postgresql://postgres:postgres@127.0.0.1:5432/test",
    "postgresql+psycopg2://postgres:postgres@127.0.0.1:5432/test",
])
def test_database_url_forms_use_psycopg2(given, settings, database_url, monkeypatch):
    assert normalize_database_url(given).startswith("postgresql+psycopg2://")
    monkeypatch.setenv("DATABASE_URL", given)
    overrides = {k: v for k, v in settings.items() if k != "SQLALCHEMY_DATABASE_URI"}
    app = create_app(load_config(**overrides))
    with app.app_context():
        from app.extensions import db

        assert db.engine.dialect.driver == "psycopg2"
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1


def test_missing_secret_key_fails_start_up_outside_local_mode(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config()
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "routes"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    monkeypatch.setenv("APP_ENV", "local")
    assert load_config().SECRET_KEY


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"redis": "ok", "database": "ok", "storage": "ok"}


def test_healthz_503_when_redis_is_down(settings):
    app = create_app(load_config(**{**settings, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()["error"]
    assert body["code"] == "unavailable" and "redis" in body["message"]
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] != "ok"


def test_healthz_503_when_database_is_down(settings):
    bad = f"postgresql+psycopg2://postgres:postgres@127.0.0.1:{free_port()}/test"
    app = create_app(load_config(**{**settings, "SQLALCHEMY_DATABASE_URI": bad}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "database" in response.get_json()["error"]["message"]


def test_gunicorn_serves_tokens_and_errors(gunicorn, make_file):
    import requests

    file_id, _ = make_file()
    server = gunicorn()
    response = requests.post(f"{server.url}/api/v1/files/{file_id}/tokens", timeout=5)
    assert response.status_code == 201
    token = response.json()["token"]
    assert requests.get(f"{server.url}/api/v1/queue/{token}x/status", timeout=5).status_code == 403
    assert requests.post(f"{server.url}/api/v1/files/424242/tokens", timeout=5).status_code == 404
    assert requests.get(f"{server.url}/healthz", timeout=5).json()["status"] == "ok"


def test_a_key_rotation_keeps_tokens_signed_with_the_previous_key(settings, make_file):
    file_id, _ = make_file()
    old_token, _ = issue_token("the-previous-key-rotated-out", file_id, 600)
    stranger, _ = issue_token("a-key-this-deployment-never-had", file_id, 600)
    app = create_app(load_config(**{**settings, "SECRET_KEY": "the-new-key-after-rotation",
                                    "SECRET_KEY_FALLBACKS": ["the-previous-key-rotated-out"]}))
    client = app.test_client()
    joined = client.post(f"/api/v1/queue/{old_token}")
    assert joined.status_code == 200 and joined.json["state"] == "ready"
    refused = client.post(f"/api/v1/queue/{stranger}")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "invalid_token"
    fresh = client.post(f"/api/v1/files/{file_id}/tokens").json["token"]
    assert verify_token("the-new-key-after-rotation", fresh).file_id == file_id  # new tokens: the new key
    assert load_config({"APP_ENV": "test", "SECRET_KEY_FALLBACKS": "a, b,,"}).SECRET_KEY_FALLBACKS == ["a", "b"]


def test_flask_cli_in_a_new_shell_reads_the_flaskenv(settings, make_file, tmp_path):
    """What run.sh leaves behind: a new shell's `flask files list` needs no flags or exports."""
    file_id, path = make_file("notes.txt", size=100)
    (tmp_path / ".flaskenv").write_text(
        f"FLASK_APP={ROOT / 'wsgi.py'}\nAPP_ENV=local\nDATABASE_URL={settings['SQLALCHEMY_DATABASE_URI']}\n"
        f"FILES_ROOT={settings['FILES_ROOT']}\nREDIS_URL={settings['REDIS_URL']}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SECRET_KEY", "FLASK_APP", "DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-m", "flask", "files", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{file_id}\tpublic\t100\t{hashlib.sha256(path.read_bytes()).hexdigest()}\tnotes.txt" in result.stdout
    limiter = subprocess.run([sys.executable, "-m", "flask", "limiter", "config"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert limiter.returncode == 0, limiter.stderr  # its extra is installed: the group works
