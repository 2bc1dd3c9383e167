"""The seed's original routes, kept compatible so its browser snippet works unchanged.

``/request/order/<token>`` streams unnamed messages whose data is the place in line and
finally ``0`` (download now); ``/request/download/<token>`` is the v1 download.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..services.issuing import issue_for_file
from ..services.waiting import EventKind, QueueEvent
from .downloads import serve
from .queue import open_feed
from .sse import Message, json_message, stream

bp = Blueprint("seed", __name__, url_prefix="/request")


@bp.route("/generate/<int:file_id>", methods=["GET", "POST"])
def generate(file_id: int) -> Response:
    token, _claims, _name = issue_for_file(current_app.config, file_id, request.headers.get("Authorization"))
    return Response(token, mimetype="text/plain")


def seed_message(event: QueueEvent) -> Message:
    """The seed's protocol: unnamed messages carrying the place in line, ``0`` = download."""
    if event.kind == EventKind.POSITION and event.data["position"] is None:  # no number before a release
        return Message(comment=f"pre-queued: places are drawn at random at {event.data.get('release_at')}")
    if event.kind == EventKind.POSITION:
        return Message(data=str(event.data["position"]), id=event.id)
    if event.kind == EventKind.READY:
        return Message(data="0", id=event.id)
    if event.kind == EventKind.ERROR:
        return json_message(EventKind.ERROR, event.data)
    return Message(comment=event.kind)


@bp.get("/order/<token>")
def order(token: str) -> Response:
    return stream(open_feed(token).events, seed_message)


@bp.route("/download/<token>", methods=["GET", "HEAD"])
def download(token: str) -> Response:
    return serve(token)
