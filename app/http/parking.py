"""Event streams parked between their events: no greenlet each while they wait.

An open event stream spends almost all its life waiting, for the hub's news or for its next
heartbeat. Served the usual way it waits in a greenlet of its own, deep in gunicorn's request
handling, and a parked greenlet keeps its saved C stack, its own stack of Python frames and
gunicorn's request (about half of what an idle waiter cost: bench/sse_capacity_bench.py).

Under gunicorn's gevent worker on plain TCP the stream takes its connection over instead: the
response writes its own head (chunked, as gunicorn would), detaches the socket's descriptor from
gunicorn's socket object and ends gunicorn's request by raising ``StopIteration``, the way
gunicorn's async workers let an application keep a connection (Flask-Sock does the same);
gunicorn's closing of its detached object leaves the connection open. While it waits, what is left of the stream is its feed (a suspended
generator), one timer and one watcher on its socket. When its waiter is woken, its time is up
or its client hangs up, a short-lived greenlet runs the feed to its next pause and writes
what it yielded.
"""
from __future__ import annotations

import _socket
import contextlib
import email.utils
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import gevent
from flask import Response
from gevent import monkey
from gevent.socket import wait_write

from ..services.feeds import Feed, Pause
from .access import detached_line

log = logging.getLogger(__name__)

T = TypeVar("T")
READ = 1  # libev's EV_READ
WRITE_TIMEOUT = 60.0  # a client that takes none of an event's bytes for this long is gone
DRAIN_POLL = 0.05

_parked: set[_Stream] = set()  # every stream this process serves this way


def parkable(environ: dict[str, Any]) -> bool:
    """Whether this request's connection can be taken over (gunicorn's gevent worker, no TLS:
    a TLS session cannot be shared by two handles)."""
    sock = environ.get("gunicorn.socket")
    return sock is not None and not isinstance(sock, ssl.SSLSocket) and monkey.is_module_patched("socket")


def drain(timeout: float) -> int:
    """Wait (up to ``timeout`` seconds) for the parked streams to end, after the hub told them
    this process is closing; returns how many were still open."""
    for _ in range(max(1, round(timeout / DRAIN_POLL))):
        if not _parked:
            break
        gevent.sleep(DRAIN_POLL)
    return len(_parked)


class ParkedStream(Response):
    """A streaming response that serves its feed itself, over its own handle of the socket."""

    def __init__(self, events: Feed[T], encode: Callable[[T], bytes], prelude: bytes) -> None:
        super().__init__(iter(()))  # not a sequence: no Content-Length, the body ends at the close
        self.feed = (events, encode, prelude)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = self.get_wsgi_headers(environ).to_wsgi_list()
        start_response(self.status, headers)  # the access log adds its request id to the list
        chunked = environ.get("SERVER_PROTOCOL") == "HTTP/1.1"  # as gunicorn frames it; 1.0: ends at the close
        head = "".join([f"HTTP/1.1 {self.status}\r\n", *(f"{name}: {value}\r\n" for name, value in headers),
                        "Transfer-Encoding: chunked\r\n" if chunked else "",
                        f"Date: {email.utils.formatdate(usegmt=True)}\r\n", "Connection: close\r\n\r\n"])
        # the descriptor itself, not a duplicate: epoll would go on reporting a closed
        # duplicate's events under its old number
        conn = _socket.socket(fileno=environ["gunicorn.socket"].detach())
        conn.setblocking(False)
        events, encode, prelude = self.feed
        _Stream(conn, events, encode, detached_line(environ), chunked).begin(head.encode("latin-1"), prelude)
        raise StopIteration("the event stream took its connection over")


class _Gone(Exception):
    """The client cannot be written to any more."""


class _Stream:
    """One parked stream: its handle of the connection, its feed, what wakes it."""

    __slots__ = ("busy", "chunked", "conn", "encode", "events", "hung_up", "line", "sent", "timer", "waiter", "watch")

    def __init__(self, conn: _socket.socket, events: Feed[T], encode: Callable[[T], bytes],
                 line: Callable[[int], None], chunked: bool) -> None:
        self.conn = conn
        self.chunked = chunked
        self.events = events
        self.encode = encode
        self.line = line  # writes the request's log line with the bytes the body sent
        self.sent = 0
        self.busy = True  # running its feed (in some greenlet), not parked
        self.hung_up = False
        self.watch: Any = None
        self.timer: Any = None
        self.waiter: Any = None

    def begin(self, head: bytes, prelude: bytes) -> None:
        """Runs the feed to its first pause in the request's greenlet, then parks."""
        _parked.add(self)
        self.watch = gevent.get_hub().loop.io(self.conn.fileno(), READ)
        self.watch.start(self._readable)
        self._send(head)
        self.sent = 0  # the log counts the body
        self._run(None, prelude)

    # -- running (in a greenlet) -----------------------------------------------------
    def _run(self, reply: bool | None, pending: bytes = b"") -> None:
        chunks = [pending] if pending else []
        try:
            while not self.hung_up:
                item = self.events.send(reply)
                if not isinstance(item, Pause):
                    chunks.append(self.encode(item))
                    reply = None
                    continue
                if chunks:
                    self._send(self._framed(b"".join(chunks)))
                    chunks.clear()
                if item.waiter is not None and item.waiter.woken():
                    reply = True
                    continue
                if not self.hung_up:
                    self._park(item)
                    return
        except StopIteration:  # the feed ended: its last events go, then the connection closes
            with contextlib.suppress(_Gone):
                self._send(self._framed(b"".join(chunks)) + (b"0\r\n\r\n" if self.chunked else b""))
        except _Gone:
            pass
        except Exception:
            log.exception("event stream failed")
        self._end()

    def _framed(self, data: bytes) -> bytes:
        if not self.chunked or not data:
            return data
        return b"%x\r\n%s\r\n" % (len(data), data)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.conn.send(view):]
            except BlockingIOError:
                wait_write(self.conn.fileno(), timeout=WRITE_TIMEOUT, timeout_exc=_Gone("write timed out"))
            except OSError as exc:
                raise _Gone(str(exc)) from exc
        self.sent += len(data)

    def _end(self) -> None:
        try:
            self.events.close()  # a feed cut short runs its end here (a waiter's grace starts)
        except Exception:
            log.exception("event stream failed to close")
        self.watch.close()
        self.conn.close()
        _parked.discard(self)
        self.line(self.sent)

    # -- parked (callbacks of the event loop: no blocking here) ----------------------
    def _park(self, pause: Pause) -> None:
        self.busy = False
        self.timer = gevent.get_hub().loop.timer(pause.seconds)
        self.timer.start(self._resume)
        self.waiter = pause.waiter
        if self.waiter is not None:
            self.waiter.changed.rawlink(self._woken)  # called at once if it is already set

    def _woken(self, _event: object) -> None:
        self._resume()

    def _resume(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.timer.close()
        woken = False
        if self.waiter is not None:
            self.waiter.changed.unlink(self._woken)
            woken = self.waiter.woken()
            self.waiter = None
        gevent.spawn_raw(self._run, woken)

    def _readable(self) -> None:
        """A client of an event stream sends nothing after its request: readable means it
        ended (end-of-file or a reset) or, rarely, sent bytes (then stop watching; the next
        write tells)."""
        try:
            peeked = self.conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            peeked = b""
        self.watch.stop()
        if not peeked:
            self.hung_up = True  # its grace starts now, not at the next write
            self._resume()
