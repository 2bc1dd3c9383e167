"""One log line per request, written when its body is finished (streams and downloads too).

The line names the route template, never the path: paths carry tokens. ``bytes`` is what the
body actually delivered; a download sent with ``sendfile`` past this middleware reports its own
count (what the client acknowledged) through ``SENT_KEY``. The request id comes from
``X-Request-ID`` when a trusted proxy sets it (``TRUSTED_PROXY_COUNT``), else is made here, and
is echoed in the response.
"""
from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger("download_queue.access")

ROUTE_KEY = "download_queue.route"  # set by the app once the URL rule matched
SENT_KEY = "download_queue.sent"  # a callable returning the bytes a body delivered itself
REQUEST_ID_KEY = "download_queue.request_id"
LINE_KEY = "download_queue.log_line"  # the request's line, for a body that finishes past the server
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

StartResponse = Callable[..., Any]


class RequestLog:
    """WSGI middleware around the Flask app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], trust_request_id: bool, enabled: bool) -> None:
        self.app = app
        self.trust_request_id = trust_request_id
        self.enabled = enabled

    def _request_id(self, environ: dict[str, Any]) -> str:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        if self.trust_request_id and REQUEST_ID.fullmatch(given):
            return given
        return uuid.uuid4().hex

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = environ[REQUEST_ID_KEY] = self._request_id(environ)
        status: list[int] = [0]

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(code.split(" ", 1)[0])
            headers.append(("X-Request-ID", request_id))
            return start_response(code, headers, exc_info)

        if self.enabled:
            environ[LINE_KEY] = _Line(started, status)
        body = self.app(environ, start)
        if not self.enabled:
            return body
        return _Logged(body, lambda count: _write(_fields(environ, status[0]), started, _sent(environ, count)))


def detached_line(environ: dict[str, Any]) -> Callable[[int], None]:
    """What writes this request's log line (given the bytes its body sent) without holding its
    environ: for a response that takes its connection over from the server (``parking``)."""
    line = environ.pop(LINE_KEY, None)
    if line is None:  # the access log is off
        return lambda count: None
    return functools.partial(_write, _fields(environ, line.status[0]), line.started)


class _Line:
    __slots__ = ("started", "status")

    def __init__(self, started: float, status: list[int]) -> None:
        self.started = started
        self.status = status


def _fields(environ: dict[str, Any], status: int) -> dict[str, Any]:
    return {
        "request_id": environ[REQUEST_ID_KEY],
        "method": environ.get("REQUEST_METHOD"),
        "route": environ.get(ROUTE_KEY, "unmatched"),
        "status": status,
        "client": environ.get("REMOTE_ADDR"),
    }


def _sent(environ: dict[str, Any], counted: int) -> int:
    sent = environ.get(SENT_KEY)
    return sent() if sent is not None else counted


def _write(fields: dict[str, Any], started: float, count: int) -> None:
    log.info("request", extra={**fields, "bytes": count,
                               "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


class _Logged:
    """The body, counting what it yields; logs once when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body = body
        self.done = done
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.count += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.count)
