"""Issue 18: files in S3-compatible object storage (a real SeaweedFS, started once per module),
served through the queue, cached on the host's disk, verifiable by every tool."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from app.config import ConfigError, load_config
from app.storage.cache import LOCK, PART, DiskCache
from app.storage.s3 import S3Store
from app.storage.sources import SourceFailed
from testbed.servers import ROOT, SeaweedS3, wait_until

from .helpers.http import RawDownload, new_token, wait_turn

SERVE = dict(QUEUE_CAPACITY=2, ADMIT_TIMEOUT=30, STALL_TIMEOUT=10, RESUME_GRACE=30, WAIT_GRACE=30)


@pytest.fixture(scope="module")
def weed(tmp_path_factory):
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture
def store(weed, monkeypatch, settings, tmp_path):
    """This test's prefix in the bucket, with the S3 client's environment set for the app."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = weed.env(prefix)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings["FILES_URL"] = env["FILES_URL"]
    settings["FILES_CACHE_DIR"] = str(tmp_path / "cache")
    return prefix, env


@pytest.fixture
def s3_app(store, app):
    return app


def put(weed, key: str, data: bytes, **meta: str) -> str:
    return weed.client().put_object(Bucket=weed.BUCKET, Key=key, Body=data, Metadata=meta)["ETag"]


def cli(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def registered_id(result) -> int:
    assert result.exit_code == 0, result.output
    return int(result.output.strip().splitlines()[-1])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_add_registers_an_object_and_reads_its_digest_once(s3_app, weed, store):
    prefix, _ = store
    data = os.urandom(3 << 20)
    put(weed, f"{prefix}/plain.bin", data)
    put(weed, f"{prefix}/carries.bin", data[:1000], sha256="ab" * 32)
    first = cli(s3_app, "files", "add", f"s3://files/{prefix}/plain.bin", "--public")
    file_id = registered_id(first)
    assert sha(data) in first.output
    # a key under FILES_URL's prefix names the same place; the digest in the metadata is taken as is
    carried = cli(s3_app, "files", "add", "carries.bin", "--name", "Carried")
    assert "ab" * 32 in carried.output and registered_id(carried) != file_id
    again = cli(s3_app, "files", "add", f"s3://files/{prefix}/plain.bin")
    assert again.exit_code != 0 and "already registered" in again.output
    missing = cli(s3_app, "files", "add", f"s3://files/{prefix}/none.bin")
    assert missing.exit_code != 0 and "no such object" in missing.output
    bad = cli(s3_app, "files", "add", "s3://No_Such/x")
    assert bad.exit_code != 0 and "bucket name" in bad.output
    listed = cli(s3_app, "files", "list").output
    assert f"s3://files/{prefix}/plain.bin" in listed and "Carried" in listed


def test_upload_is_multipart_with_the_files_own_digest(s3_app, weed, store, tmp_path):
    prefix, _ = store
    data = os.urandom(40 << 20)  # three 16 MiB parts
    path = tmp_path / "big upload.bin"
    path.write_bytes(data)
    result = cli(s3_app, "files", "upload", str(path), "--public")
    registered_id(result)
    head = weed.client().head_object(Bucket="files", Key=f"{prefix}/big upload.bin")
    assert head["ContentLength"] == len(data)
    assert head["Metadata"]["sha256"] == sha(data)
    assert head["ETag"].strip('"').endswith("-3")  # multipart: the ETag is not the file's digest
    again = cli(s3_app, "files", "upload", str(path))
    assert again.exit_code != 0 and "already exists" in again.output


def test_a_wrong_secret_is_refused(s3_app, weed, store, monkeypatch):
    prefix, _ = store
    put(weed, f"{prefix}/x.bin", b"x" * 100)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    result = cli(s3_app, "files", "add", f"s3://files/{prefix}/x.bin")
    assert result.exit_code != 0 and "access denied" in result.output


def test_start_up_refuses_a_bad_files_url_or_missing_credentials():
    with pytest.raises(ConfigError, match="FILES_URL must be s3://"):
        load_config(environ={"FILES_URL": "ftp://x/y", "APP_ENV": "test"})
    with pytest.raises(ConfigError, match="bucket name"):
        load_config(environ={"FILES_URL": "s3://A/b", "APP_ENV": "test"})
    with pytest.raises(ConfigError, match="no S3 credentials"):
        load_config(environ={"FILES_URL": "s3://files/p", "APP_ENV": "test",
                             "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_ACCESS_KEY_ID": "only-half"})
    # the same one line from the real start-up command
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(APP_ENV="test", FILES_URL="s3://files/p", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    done = subprocess.run([sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "no S3 credentials were found" in done.stderr
    assert "Traceback" not in done.stderr


def test_local_store_is_still_the_default(settings):
    assert load_config(**settings).FILES_URL == ""


def served_env(store_env: dict[str, str], tmp_path: Path, cache_bytes: int) -> dict[str, object]:
    return {**SERVE, **store_env, "FILES_CACHE_DIR": str(tmp_path / "served-cache"), "FILES_CACHE_BYTES": cache_bytes}


def admitted(base: str, file_id: int) -> str:
    token = new_token(base, file_id)
    assert wait_turn(base, token)[1].event == "ready"
    return token


def repr_digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def test_downloads_by_real_clients_through_the_queue(s3_app, weed, store, gunicorn, tmp_path):
    """Proxied (no cache): whole, ranged and resumed downloads by curl, wget and aria2c."""
    prefix, env = store
    data = os.urandom(16 << 20)
    put(weed, f"{prefix}/archive.bin", data)
    file_id = registered_id(cli(s3_app, "files", "add", f"s3://files/{prefix}/archive.bin", "--public"))
    server = gunicorn(**served_env(env, tmp_path, 0))
    token = admitted(server.url, file_id)
    url = f"{server.url}/api/v1/downloads/{token}"
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["Repr-Digest"] == repr_digest(data)
    ranged = requests.get(url, headers={"Range": "bytes=1000-2999999"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[1000:3000000]
    assert ranged.headers["Repr-Digest"] == repr_digest(data)  # the whole file's digest, on a 206 too
    whole = requests.get(url, timeout=60)
    assert whole.status_code == 200 and whole.content == data and whole.headers["Repr-Digest"] == repr_digest(data)
    for tool in ("curl", "wget", "aria2c"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/test.sh installs it)")
        out = tmp_path / f"{tool}.bin"
        url = f"{server.url}/api/v1/downloads/{admitted(server.url, file_id)}"
        command = {
            "curl": ["curl", "-sS", "-f", "-C", "-", "-o", str(out), url],
            "wget": ["wget", "-q", "-c", "-O", str(out), url],
            "aria2c": ["aria2c", "-q", "-x4", "-s4", "-k1M", "--continue=true", "--auto-file-renaming=false",
                       "-d", str(tmp_path), "-o", out.name, url],
        }[tool]
        out.write_bytes(data[: 5 << 20])  # what an interrupted first attempt left
        subprocess.run(command, check=True, timeout=120)
        assert sha(out.read_bytes()) == sha(data), tool


def test_checksums_for_every_tool(s3_app, weed, store, gunicorn, tmp_path):
    prefix, env = store
    data = os.urandom(1 << 20)
    put(weed, f"{prefix}/public one.bin", data)
    put(weed, f"{prefix}/private.bin", b"secret")
    public_id = registered_id(cli(s3_app, "files", "add", "public one.bin", "--public"))
    private_id = registered_id(cli(s3_app, "files", "add", "private.bin"))
    server = gunicorn(**served_env(env, tmp_path, 0))
    line = requests.get(f"{server.url}/files/{public_id}.sha256", timeout=5)
    assert line.status_code == 200 and line.text == f"{sha(data)}  public one.bin\n"
    assert requests.get(f"{server.url}/files/{private_id}.sha256", timeout=5).status_code == 404
    sums = requests.get(f"{server.url}/SHA256SUMS", timeout=5).text
    assert sums == line.text  # public files only
    (tmp_path / "public one.bin").write_bytes(requests.get(
        f"{server.url}/api/v1/downloads/{admitted(server.url, public_id)}", timeout=30).content)
    (tmp_path / "SHA256SUMS").write_text(sums)
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0 and "public one.bin: OK" in checked.stdout
    page = requests.get(f"{server.url}/files/{public_id}", timeout=5).text
    assert sha(data) in page


def test_an_object_replaced_or_deleted_is_an_error_never_other_bytes(s3_app, weed, store, gunicorn, tmp_path):
    prefix, env = store
    data = os.urandom(2 << 20)
    put(weed, f"{prefix}/f.bin", data)
    file_id = registered_id(cli(s3_app, "files", "add", "f.bin", "--public"))
    server = gunicorn(**served_env(env, tmp_path, 0))
    put(weed, f"{prefix}/f.bin", os.urandom(len(data)))  # same size, other bytes
    url = f"{server.url}/api/v1/downloads/{admitted(server.url, file_id)}"
    changed = requests.get(url, timeout=10)
    assert changed.status_code == 503 and changed.json()["error"]["code"] == "file_changed"
    verified = cli(s3_app, "files", "verify", str(file_id))
    assert verified.exit_code == 1 and "WITHDRAWN" in verified.output and "sha256 mismatch" in verified.output
    assert "withdrawn: sha256 mismatch" in cli(s3_app, "files", "list").output
    withdrawn = requests.get(url, timeout=10)
    assert withdrawn.status_code == 503 and withdrawn.json()["error"]["code"] == "file_withdrawn"
    put(weed, f"{prefix}/f.bin", data)  # the right bytes again (a new ETag)
    assert cli(s3_app, "files", "verify").exit_code == 0
    fixed = requests.get(url, timeout=30)
    assert fixed.status_code == 200 and fixed.content == data
    weed.client().delete_object(Bucket="files", Key=f"{prefix}/f.bin")
    gone = requests.get(f"{server.url}/api/v1/downloads/{admitted(server.url, file_id)}", timeout=10)
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "file_changed"


def queue_counts(base: str) -> dict:
    return requests.get(f"{base}/api/v1/queue", timeout=5).json()


@pytest.fixture
def own_store(s3_app, tmp_path, monkeypatch):
    """A SeaweedFS of the test's own (to stop and start), with the app and the environment on it."""
    own = SeaweedS3(tmp_path / "own").start()
    env = own.env("own")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3_app.config["FILES_URL"] = env["FILES_URL"]
    yield own, env
    own.stop()


def registered(app, own: SeaweedS3, name: str, data: bytes) -> int:
    """``data`` stored as ``name`` in the test's own store, and registered as a public file."""
    put(own, f"own/{name}", data)
    return registered_id(cli(app, "files", "add", name, "--public"))


def test_the_store_stopped_before_and_during_downloads(s3_app, own_store, gunicorn, tmp_path):
    """A store of this test's own: a running download ends and resumes; a new one is 503 with
    Retry-After; /healthz names the store; no slot is left held."""
    own, env = own_store
    data = os.urandom(64 << 20)
    file_id = registered(s3_app, own, "big.bin", data)
    # graces longer than the store's restart may take on a busy machine (up to a minute)
    server = gunicorn(**{**served_env(env, tmp_path, 0), "RESUME_GRACE": 300, "ADMIT_TIMEOUT": 300})
    first, second = admitted(server.url, file_id), admitted(server.url, file_id)
    reader = RawDownload(server.port, f"/api/v1/downloads/{first}")
    body = reader.read(1 << 20)
    own.stop()
    while block := reader.read(1 << 20):  # what the buffers held, then the end
        body += block
    reader.close()
    assert 0 < len(body) < len(data) and body == data[: len(body)]
    cold = requests.get(f"{server.url}/api/v1/downloads/{second}", timeout=30)
    assert cold.status_code == 503 and cold.json()["error"]["reason"] == "storage"
    assert int(cold.headers["Retry-After"]) > 0
    health = requests.get(f"{server.url}/healthz", timeout=30).json()
    assert health["status"] == "degraded" and health["checks"]["storage"].startswith("error")
    own.start()
    resumed = requests.get(f"{server.url}/api/v1/downloads/{first}", headers={"Range": f"bytes={len(body)}-"},
                           timeout=60)
    assert resumed.status_code == 206, resumed.text[:300]
    assert body + resumed.content == data
    later = requests.get(f"{server.url}/api/v1/downloads/{second}", timeout=60)
    assert later.status_code == 200, later.text[:300]
    assert later.content == data
    wait_until(lambda: queue_counts(server.url)["active"] == 0, timeout=30, message="no slot left held")
    assert requests.get(f"{server.url}/healthz", timeout=30).json()["status"] == "ok"


def test_a_cached_file_is_served_with_the_store_down(s3_app, own_store, gunicorn, tmp_path):
    own, env = own_store
    data = os.urandom(8 << 20)
    file_id = registered(s3_app, own, "w.bin", data)
    server = gunicorn(**served_env(env, tmp_path, 1 << 30))
    first = requests.get(f"{server.url}/api/v1/downloads/{admitted(server.url, file_id)}", timeout=60)
    assert first.content == data
    entry = tmp_path / "served-cache" / sha(data)
    wait_until(entry.exists, timeout=30, message="the cache filled")
    assert entry.read_bytes() == data
    own.stop()
    token = admitted(server.url, file_id)
    part = requests.get(f"{server.url}/api/v1/downloads/{token}", headers={"Range": "bytes=100-"}, timeout=60)
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["Repr-Digest"] == repr_digest(data)


class _Gated:
    """A source that waits for ``gate`` after its first block (a fill caught in the middle)."""

    def __init__(self, source, gate) -> None:
        self.source, self.gate, self.reads = source, gate, 0

    def read(self, count: int) -> bytes:
        self.reads += 1
        if self.reads == 2:
            self.gate.wait(60)
        return self.source.read(min(count, 1 << 20))

    def close(self) -> None:
        self.source.close()


def _fill(root: str, digest: str, size: int, location: str, etag: str, gate, results) -> None:
    store = S3Store(os.environ["FILES_URL"], "us-east-1")
    cache = DiskCache(root, 1 << 30)
    results.put(cache.fill(digest, size, lambda: _Gated(store.open(location, 0, size, etag), gate)))


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache-of-this-host"


@pytest.fixture
def object_in_store(weed, store):
    prefix, _ = store
    data = os.urandom(6 << 20)
    etag = put(weed, f"{prefix}/c.bin", data)
    return data, f"s3://files/{prefix}/c.bin", etag


def test_two_workers_fill_an_object_once(object_in_store, cache_root):
    data, location, etag = object_in_store
    root = cache_root
    ctx = multiprocessing.get_context("fork")
    gate, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_fill, args=(str(root), sha(data), len(data), location, etag, gate, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    assert results.get(timeout=30) == "busy"  # the other holds the fill's lock, mid-copy
    assert not (root / sha(data)).exists()
    gate.set()
    assert results.get(timeout=30) == "filled"
    for worker in workers:
        worker.join(10)
    assert (root / sha(data)).read_bytes() == data
    assert not (root / (sha(data) + PART)).exists()


def test_a_fill_killed_midway_leaves_nothing_taken_for_complete(object_in_store, cache_root):
    data, location, etag = object_in_store
    root = cache_root
    ctx = multiprocessing.get_context("fork")
    gate, results = ctx.Event(), ctx.Queue()
    worker = ctx.Process(target=_fill, args=(str(root), sha(data), len(data), location, etag, gate, results))
    worker.start()
    part = root / (sha(data) + PART)
    wait_until(lambda: part.exists() and part.stat().st_size > 0, timeout=30, message="a fill under way")
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    cache = DiskCache(str(root), 1 << 30)
    assert cache.lookup(sha(data), len(data)) is None  # the partial copy is never found
    with open(root / (sha(data) + LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the dead worker's lock is gone with it
        fcntl.flock(lock, fcntl.LOCK_UN)
    store = S3Store(os.environ["FILES_URL"], "us-east-1")
    assert cache.fill(sha(data), len(data), lambda: store.open(location, 0, len(data), etag)) == "filled"
    assert Path(cache.lookup(sha(data), len(data))).read_bytes() == data and not part.exists()


def test_a_fill_of_other_bytes_is_not_kept(object_in_store, cache_root):
    data, location, etag = object_in_store
    root = cache_root
    store = S3Store(os.environ["FILES_URL"], "us-east-1")
    cache = DiskCache(str(root), 1 << 30)
    wrong = "0" * 64
    assert cache.fill(wrong, len(data), lambda: store.open(location, 0, len(data), etag)) == "mismatch"
    assert cache.lookup(wrong, len(data)) is None and list(root.iterdir()) == [root / (wrong + LOCK)]
    with pytest.raises(SourceFailed):  # a store that ends early is an error, not a short file
        source = store.open(location, 0, len(data), etag)
        source.remaining += 10
        while source.read(1 << 20):
            pass


def test_least_recently_used_entries_are_evicted(weed, store, cache_root):
    prefix, _ = store
    root = cache_root
    blobs = {name: os.urandom(2 << 20) for name in "abc"}
    etags = {name: put(weed, f"{prefix}/{name}", blob) for name, blob in blobs.items()}
    s3 = S3Store(os.environ["FILES_URL"], "us-east-1")
    cache = DiskCache(str(root), (5 << 20))  # room for two

    def fill(name: str) -> str:
        blob = blobs[name]
        return cache.fill(sha(blob), len(blob), lambda: s3.open(f"s3://files/{prefix}/{name}", 0, len(blob), etags[name]))

    assert fill("a") == "filled" and fill("b") == "filled"
    now = time.time()
    os.utime(cache.entry(sha(blobs["a"])), (now - 300, now - 300))
    os.utime(cache.entry(sha(blobs["b"])), (now - 200, now - 200))
    assert cache.lookup(sha(blobs["a"]), len(blobs["a"])) is not None  # a is used: now the most recent
    assert fill("c") == "filled"
    assert cache.lookup(sha(blobs["b"]), len(blobs["b"])) is None  # the least recently used went
    assert cache.lookup(sha(blobs["a"]), len(blobs["a"])) and cache.lookup(sha(blobs["c"]), len(blobs["c"]))
    assert cache.used() <= cache.capacity
    too_big = DiskCache(str(root / "small"), 1 << 20)
    assert not too_big.fits(len(blobs["a"]))
