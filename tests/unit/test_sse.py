"""Server-Sent Events framing: every frame ends with the blank line that dispatches it."""
from __future__ import annotations

from app.http.sse import Message, json_message


def test_frames():
    assert str(Message(data="3", id=7)) == "id: 7\ndata: 3\n\n"
    assert str(Message(comment="heartbeat")) == ": heartbeat\n\n"
    assert str(Message(retry=3000, comment="connected")) == ": connected\nretry: 3000\n\n"
    assert str(Message(data="a\nb", event="x")) == "event: x\ndata: a\ndata: b\n\n"
    assert str(Message(data="")) == "data: \n\n"


def test_json_messages_are_one_compact_line():
    frame = str(json_message("position", {"position": 2, "eta_seconds": None}, 4))
    assert frame == 'id: 4\nevent: position\ndata: {"position":2,"eta_seconds":null}\n\n'
