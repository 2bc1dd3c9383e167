"""The queue API: wait over SSE, join/poll/leave as JSON, and the line's summary."""
from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..catalog.service import file_name
from ..errors import AppError
from ..services import waiting
from ..services.waiting import QueueEvent
from .downloads import download_url
from .sse import Message, json_message, stream

bp = Blueprint("queue", __name__, url_prefix="/api/v1/queue")


def open_feed(app: Flask, token: str, client_addr: str) -> tuple[Iterator[QueueEvent], str]:
    """Join now (inside the request): the feed and the token's download URL; errors become the
    feed's only event."""
    try:
        claims, snap = waiting.join(app, token, client_addr, hold=True)
    except AppError as exc:
        return iter([QueueEvent("error", exc.to_dict())]), ""
    return waiting.events(app, claims, snap, client_addr), download_url(token, file_name(claims.file_id))


def v1_message(event: QueueEvent, url: str) -> Message:
    if event.kind == "heartbeat":
        return Message(comment="heartbeat")
    if event.kind == "closed":
        return Message(comment="server restarting; reconnect")
    if event.kind == "ready":
        return json_message("ready", {"download_url": url, **event.data}, event.id)
    return json_message(event.kind, event.data, event.id)


@bp.get("/<token>", endpoint="stream")
def stream_view(token: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    feed, url = open_feed(app, token, request.remote_addr or "")
    return stream(feed, lambda event: v1_message(event, url))


@bp.post("/<token>")
def join(token: str) -> Response:
    _claims, snap = waiting.join(current_app, token, request.remote_addr or "")
    return jsonify(with_urls(waiting.view(snap, snap.state or "waiting", snap.position), token))


@bp.get("/<token>/status")
def status(token: str) -> Response:
    return jsonify(with_urls(waiting.status(current_app, token), token))


@bp.get("/<token>/progress")
def progress(token: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return stream(waiting.progress(app, token), lambda event: json_message(event.kind, event.data, event.id))


@bp.delete("/<token>")
def leave(token: str) -> Response:
    return jsonify(waiting.leave(current_app, token))


@bp.get("")
def summary() -> Response:
    return jsonify(waiting.summary(current_app))


def with_urls(body: dict[str, object], token: str) -> dict[str, object]:
    if body["state"] in ("ready", "downloading"):
        body["download_url"] = download_url(token, file_name(waiting.claims_for(current_app, token, True).file_id))
    return body
