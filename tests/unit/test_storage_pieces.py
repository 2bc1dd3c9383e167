"""Pure pieces of the storage layer: locations, credentials, digests, sizes, and the sources'
byte accounting over a local socket pair (no store)."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import threading

import pytest

from app.config import ConfigError, _size
from app.storage.digests import checksum_line, repr_digest, sha256_of
from app.storage.locations import has_credentials, parse_url
from app.storage.sources import FileSource, SourceFailed, StreamSource


def test_s3_locations():
    assert parse_url("s3://files") == ("files", "")
    assert parse_url("s3://my.bucket-1/a/b/") == ("my.bucket-1", "a/b/")
    for bad in ("http://files/x", "s3://Files/x", "s3://ab/x", "s3://files/x?v=1", "s3:///x"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_credentials_are_found_where_the_client_looks(tmp_path):
    none = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent")}
    assert not has_credentials(none)
    assert not has_credentials({**none, "AWS_ACCESS_KEY_ID": "k"})
    assert has_credentials({**none, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert has_credentials({**none, "AWS_PROFILE": "prod"})
    (tmp_path / "credentials").write_text("[default]\n")
    assert has_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")})


def test_digests_as_http_and_sha256sum_show_them():
    data = b"hello"
    hexdigest = hashlib.sha256(data).hexdigest()
    assert repr_digest(hexdigest) == "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"
    assert checksum_line(hexdigest, "a b.bin") == f"{hexdigest}  a b.bin\n"
    assert checksum_line(hexdigest, "a\\b\nc") == f"\\{hexdigest}  a\\\\b\\nc\n"  # as GNU sha256sum escapes


def test_cache_sizes():
    assert _size({"X": "0"}, "X", "1") == 0
    assert _size({"X": "500M"}, "X", "1") == 500 << 20
    assert _size({"X": "4GiB"}, "X", "1") == 4 << 30
    assert _size({}, "X", "2G") == 2 << 30
    for bad in ("lots", "-1", "4Q"):
        with pytest.raises(ConfigError):
            _size({"X": bad}, "X", "1")


def _served(data: bytes, cut: int | None = None) -> socket.socket:
    """Our end of a connection whose peer sends ``data`` (only ``cut`` bytes of it, then closes)."""
    ours, theirs = socket.socketpair()

    def send() -> None:
        theirs.sendall(data[:cut] if cut is not None else data)
        theirs.close()

    threading.Thread(target=send, daemon=True).start()
    ours.setblocking(False)
    return ours


@pytest.mark.parametrize("splice", [True, False])
def test_a_stream_source_moves_exactly_its_body(splice):
    body = os.urandom(3 << 20)
    head = body[:1000]  # arrived with the response's headers
    source = StreamSource(_served(body[1000:]), head, len(body))
    source.splice = splice
    reader, writer = os.pipe2(os.O_NONBLOCK)  # a client socket that fills up, as a pipe
    got = bytearray()
    sent = 0
    while len(got) < len(body):
        if sent < len(body):
            with contextlib.suppress(BlockingIOError):
                sent += source.send(writer, 256 << 10)
        with contextlib.suppress(BlockingIOError):
            got += os.read(reader, 1 << 20)
    source.close()
    assert bytes(got) == body


def test_a_store_that_stops_short_is_an_error_not_a_short_file():
    body = os.urandom(1 << 20)
    source = StreamSource(_served(body, cut=1000), b"", len(body), stall_timeout=5)
    with pytest.raises(SourceFailed):
        sha256_of(source, len(body))


def test_a_file_source_reads_its_range_only(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 10)
    source = FileSource(str(path), 10, 20)
    assert source.read(100) == (bytes(range(256)) * 10)[10:20]
    with pytest.raises(SourceFailed):
        FileSource(str(path), 2560, 2561).read(1)
