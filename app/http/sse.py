"""Server-Sent Events framing and the streaming response that carries it."""
from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from flask import Response, request

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


def stream(events: Iterable[T], render: Callable[[T], Message]) -> Response:
    """A ``text/event-stream`` response that is never buffered by proxies, caches or Nagle.

    Each open stream is a greenlet parked inside this generator: rendering here (no mapping
    generator in between) and passing bytes straight through (no re-encoding wrapper) keeps
    its saved stack, and so each waiter's memory, small."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a Unix socket): nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def body() -> Iterator[bytes]:
        yield str(Message(retry=RETRY_MS, comment="connected")).encode()
        for event in events:
            yield str(render(event)).encode()

    response = Response(body(), mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
