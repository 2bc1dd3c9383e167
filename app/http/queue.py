"""The queue API: wait over SSE, join/poll/leave as JSON, and the line's summary."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from ..catalog.service import file_name
from ..queue.states import ClientState
from ..runtime import runtime
from ..services import progress as progress_service
from ..services import waiting
from ..services.waiting import EventKind, QueueEvent
from .downloads import download_url
from .sse import Message, json_message, stream

bp = Blueprint("queue", __name__, url_prefix="/api/v1/queue")


def open_feed(token: str) -> waiting.WaiterFeed:
    """Join now (inside the request) with this process's loops running; errors become the
    feed's only event."""
    rt = runtime(current_app).running()
    return waiting.open_feed(rt.engine, rt.hub, current_app.config, token, request.remote_addr or "",
                             current_app.app_context, rt.metrics.streams)


def v1_message(event: QueueEvent, url: str) -> Message:
    if event.kind == EventKind.CLOSED:
        return Message(comment="server restarting; reconnect")
    if event.kind == EventKind.READY:
        return json_message(EventKind.READY, {"download_url": url, **event.data}, event.id)
    return json_message(event.kind, event.data, event.id)


@bp.get("/<token>", endpoint="stream")
def stream_view(token: str) -> Response:
    feed = open_feed(token)
    url = download_url(token, file_name(feed.claims.file_id)) if feed.claims else ""
    return stream(feed.events, lambda event: v1_message(event, url))


@bp.post("/<token>")
def join(token: str) -> Response:
    _claims, snap = waiting.join(runtime(current_app).engine, current_app.config, token, request.remote_addr or "")
    return jsonify(with_urls(waiting.joined_view(snap), token))


@bp.get("/<token>/status")
def status(token: str) -> Response:
    return jsonify(with_urls(waiting.status(runtime(current_app).engine, current_app.config, token), token))


@bp.get("/<token>/progress")
def progress(token: str) -> Response:
    events = progress_service.progress(runtime(current_app).engine, current_app.config, token)
    return stream(events, lambda event: json_message(event.kind, event.data, event.id))


@bp.delete("/<token>")
def leave(token: str) -> Response:
    return jsonify(waiting.leave(runtime(current_app).engine, current_app.config, token))


@bp.get("")
def summary() -> Response:
    return jsonify(waiting.summary(runtime(current_app).engine))


def with_urls(body: dict[str, object], token: str) -> dict[str, object]:
    if body["state"] in (ClientState.READY, ClientState.DOWNLOADING):
        claims = waiting.claims_for(current_app.config, token, allow_expired=True)
        body["download_url"] = download_url(token, file_name(claims.file_id))
    return body
