"""The seed's original routes, kept compatible so its browser snippet works unchanged.

``/request/order/<token>`` streams unnamed messages whose data is the place in line and
finally ``0`` (download now); ``/request/download/<token>`` is the v1 download.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..services.issuing import issue_for_file
from ..services.waiting import QueueEvent
from .downloads import serve
from .queue import open_feed
from .sse import Message, json_message, stream

bp = Blueprint("seed", __name__, url_prefix="/request")


@bp.route("/generate/<int:file_id>", methods=["GET", "POST"])
def generate(file_id: int) -> Response:
    token, _claims, _name = issue_for_file(current_app, file_id, request.headers.get("Authorization"))
    return Response(token, mimetype="text/plain")


def seed_message(event: QueueEvent) -> Message:
    """The seed's protocol: unnamed messages carrying the place in line, ``0`` = download."""
    if event.kind == "position":
        return Message(data=str(event.data["position"]), id=event.id)
    if event.kind == "ready":
        return Message(data="0", id=event.id)
    if event.kind == "error":
        return json_message("error", event.data)
    return Message(comment=event.kind)


@bp.get("/order/<token>")
def order(token: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    feed, _url = open_feed(app, token, request.remote_addr or "")
    return stream(feed, seed_message)


@bp.route("/download/<token>", methods=["GET", "HEAD"])
def download(token: str) -> Response:
    return serve(current_app._get_current_object(), token)  # type: ignore[attr-defined]
