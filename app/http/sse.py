"""Server-Sent Events framing and the streaming response that carries it."""
from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flask import Response, request

RETRY_MS = 3000


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


def stream(messages: Iterable[Message]) -> Response:
    """A ``text/event-stream`` response that is never buffered by proxies, caches or Nagle."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a Unix socket): nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def body() -> Iterator[str]:
        yield str(Message(retry=RETRY_MS, comment="connected"))
        for message in messages:
            yield str(message)

    response = Response(body(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
