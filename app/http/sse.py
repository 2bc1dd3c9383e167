"""Server-Sent Events framing and the streaming response that carries it."""
from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from flask import Response, request

from ..services.feeds import Feed, Pause
from . import parking

RETRY_MS = 3000
T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One SSE frame; ``str()`` ends with the blank line that dispatches it."""

    data: str | None = None
    event: str | None = None
    id: int | None = None
    retry: int | None = None
    comment: str | None = None

    def __str__(self) -> str:
        lines = []
        if self.comment is not None:
            lines.append(f": {self.comment}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.data is not None:
            lines.extend(f"data: {line}" for line in self.data.splitlines() or [""])
        return "\n".join(lines) + "\n\n"


def json_message(event: str, payload: object, id: int | None = None) -> Message:
    return Message(data=json.dumps(payload, separators=(",", ":")), event=event, id=id)


def stream(events: Feed[T], render: Callable[[T], Message]) -> Response:
    """A ``text/event-stream`` response that is never buffered by proxies, caches or Nagle.

    Under gunicorn's gevent worker on plain TCP the stream is parked between its events: no
    greenlet waits in it (``parking``). Elsewhere (TLS in gunicorn, another server) the
    server's greenlet or thread waits in its body."""
    environ = request.environ
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a Unix socket): nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    prelude = str(Message(retry=RETRY_MS, comment="connected")).encode()

    def encode(item: T) -> bytes:
        return str(render(item)).encode()

    response = (parking.ParkedStream(events, encode, prelude) if parking.parkable(environ)
                else Response(_served(events, encode, prelude), direct_passthrough=True))
    response.mimetype = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _served(events: Feed[T], encode: Callable[[T], bytes], prelude: bytes) -> Iterator[bytes]:
    """The feed as a body its server iterates, waiting out each pause where it is."""
    yield prelude
    try:
        reply = None
        while True:
            item = events.send(reply)
            if isinstance(item, Pause):
                reply = item.wait()
            else:
                reply = None
                yield encode(item)
    except StopIteration:
        return
    finally:
        events.close()
