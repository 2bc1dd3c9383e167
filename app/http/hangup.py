"""Noticing a client that closed its connection when it closes, not at the next write.

An SSE stream writes only when there is news (or a heartbeat every 15 s); until then a closed
connection would still count as a present waiter. Under gunicorn's gevent worker the stream's
socket is watched for reading: a client of an event stream sends nothing after its request, so
the socket becomes readable only when it ends (end-of-file or a reset) or, rarely, sends more
bytes (then the watch stops, and the next write finds out as before).
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import gevent
from flask import request
from gevent import monkey

READ = 1  # libev's EV_READ


def hangup_watch() -> Callable[[Callable[[], None]], Callable[[], None]]:
    """For this request's connection, read now (a stream's body runs after its request context):
    ``watch(on_hangup)`` calls ``on_hangup`` once if the client closes the connection and returns
    what stops watching (call it when the response ends)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None or isinstance(sock, ssl.SSLSocket) or not monkey.is_module_patched("socket"):
        return lambda on_hangup: lambda: None  # TLS in gunicorn: no peeking; the next write tells
    return lambda on_hangup: _watch(sock, on_hangup)


def _watch(sock: socket.socket, on_hangup: Callable[[], None]) -> Callable[[], None]:
    watcher = gevent.get_hub().loop.io(sock.fileno(), READ)

    def check() -> None:
        try:
            peeked = sock.recv(1, socket.MSG_PEEK)  # readable: returns at once
        except OSError:
            peeked = b""
        if not peeked:
            on_hangup()

    def readable() -> None:
        watcher.stop()  # one look: it ended, or it sent bytes no one here reads
        gevent.spawn(check)  # a socket call may switch greenlets: not inside the loop's callback

    watcher.start(readable)
    return watcher.close
