"""The operators' side: the live admin page, its JSON API and its event stream.

Every route here needs ``ADMIN_API_KEY`` (bearer or basic auth); who acted is recorded with
every change: the basic-auth user name (or ``admin``) and the client address.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from ..errors import Forbidden, InvalidRequest
from ..history.audit import recent_changes
from ..queue.engine import QueueEngine
from ..queue.states import QueueMode
from ..runtime import runtime
from ..services import operating, releasing
from .auth import require
from .sse import json_message, stream

bp = Blueprint("admin", __name__)


@bp.before_request
def authenticate() -> None:
    """The key, and (since browsers re-send basic auth on their own) no cross-site changes."""
    user = require(current_app.config["ADMIN_API_KEY"], "admin",
                   "The admin API is disabled: set ADMIN_API_KEY to turn it on.")
    origin = request.headers.get("Origin")
    if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("Cross-site requests may not change the queue.")
    g.actor = f"{user or 'admin'}@{request.remote_addr or 'unknown'}"


@bp.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _engine() -> QueueEngine:
    return runtime(current_app).engine


@bp.get("/admin")
def page() -> str:
    return render_template("admin.html", state=operating.state(_engine()))


@bp.get("/api/v1/admin/queue")
def queue_state() -> Response:
    return jsonify(operating.state(_engine()))


@bp.patch("/api/v1/admin/queue/settings")
def change_settings() -> Response:
    return jsonify(operating.change_settings(_engine(), g.actor, request.get_json(silent=True)))


def _mode_route(action: str, mode: QueueMode) -> None:
    def view() -> Response:
        return jsonify(operating.set_mode(_engine(), g.actor, mode))

    bp.add_url_rule(f"/api/v1/admin/queue/{action}", endpoint=action, view_func=view, methods=["POST"])


for _action, _mode in (("pause", QueueMode.PAUSED), ("resume", QueueMode.OPEN), ("drain", QueueMode.DRAINING)):
    _mode_route(_action, _mode)


@bp.delete("/api/v1/admin/tokens/<token_id>")
def remove_token(token_id: str) -> Response:
    return jsonify(operating.remove_token(_engine(), g.actor, token_id))


@bp.patch("/api/v1/admin/files/<int:file_id>")
def change_file(file_id: int) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"release_at"}:
        raise InvalidRequest('Send {"release_at": "2026-12-24T10:00:00Z"} (or null to release now).')
    return jsonify(releasing.schedule(_engine(), g.actor, file_id, body["release_at"]))


@bp.get("/api/v1/admin/audit")
def audit() -> Response:
    return jsonify({"changes": recent_changes()})


@bp.get("/api/v1/admin/events")
def events() -> Response:
    feed = operating.live(_engine(), current_app.app_context)
    return stream(feed, lambda body: json_message("state", body))
