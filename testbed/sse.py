"""An SSE reader for tests and benchmarks: a text/event-stream parsed as a browser does."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import requests


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    def json(self):
        return json.loads(self.data)


def sse(url: str, timeout: float = 60, headers: dict | None = None) -> Iterator[Event]:
    """Parse a text/event-stream as a browser would; comment-only blocks yield nothing."""
    with requests.get(url, stream=True, timeout=timeout, headers=headers or {}) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        event, data, event_id = "message", [], None
        for raw in response.iter_lines(decode_unicode=True):
            if raw == "":
                if data:
                    yield Event(event, "\n".join(data), event_id)
                event, data = "message", []
                continue
            if raw.startswith(":"):
                continue
            field, _, value = raw.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
