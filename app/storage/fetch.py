"""One HTTP GET of a (presigned) object URL whose body is handed over as a ``StreamSource``.

The status line and headers are parsed by h11; the body is left on the socket, so plain HTTP
can be spliced to the client without passing through Python. Sockets are gevent's wherever
the process is patched (gunicorn's gevent worker); every wait has a timeout.
"""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from .errors import StoreUnavailable
from .sources import StreamSource

CONNECT_TIMEOUT = 5.0
HEADERS_TIMEOUT = 15.0
MAX_HEAD = 64 << 10


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: StreamSource | None  # for 200 and 206 only; otherwise the connection is closed


def _connect(url: str) -> tuple[socket.socket, str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreUnavailable(f"Not an HTTP URL for the store: {parts.scheme}://{parts.hostname}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
    except OSError as exc:
        raise StoreUnavailable(f"The file store is unreachable: {exc}.") from exc
    host = parts.netloc.rsplit("@", 1)[-1]
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return sock, host, target


def get(url: str, headers: dict[str, str]) -> Reply:
    """GET ``url`` with ``headers``; a connection error or an unreadable answer is StoreUnavailable."""
    sock, host, target = _connect(url)
    conn = h11.Connection(our_role=h11.CLIENT)
    request = h11.Request(method="GET", target=target,
                          headers=[("Host", host), ("Connection", "close"), *headers.items()])
    try:
        sock.settimeout(HEADERS_TIMEOUT)
        sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
        raw = b""
        while (end := raw.find(b"\r\n\r\n")) < 0:
            if len(raw) > MAX_HEAD:
                raise StoreUnavailable("The file store answered with oversized headers.")
            block = sock.recv(16 << 10)
            if not block:
                raise StoreUnavailable("The file store closed the connection before answering.")
            raw += block
        conn.receive_data(raw[:end + 4])
        event = conn.next_event()
    except (OSError, h11.ProtocolError) as exc:
        sock.close()
        raise StoreUnavailable(f"The file store did not answer: {exc}.") from exc
    except StoreUnavailable:
        sock.close()
        raise
    if not isinstance(event, h11.Response):
        sock.close()
        raise StoreUnavailable("The file store sent no response.")
    fields = {name.decode().lower(): value.decode("latin-1") for name, value in event.headers}
    if event.status_code not in (200, 206) or "content-length" not in fields:
        sock.close()
        return Reply(event.status_code, fields, None)
    sock.setblocking(False)
    return Reply(event.status_code, fields, StreamSource(sock, raw[end + 4:], int(fields["content-length"])))
