"""``POST /api/v1/files/<id>/tokens``: hand out a signed download token."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from ..errors import InvalidRequest
from ..services.issuing import issue_for_file
from ..services.tokens import iso_utc
from .downloads import download_url

bp = Blueprint("tokens", __name__)


@bp.post("/api/v1/files/<int:file_id>/tokens")
def create_token(file_id: int) -> tuple[Response, int]:
    body = request.get_json(silent=True) if request.content_length else None
    if request.content_length and (not isinstance(body, dict) or set(body) - {"subject"}
                                   or ("subject" in body and body["subject"] is None)):
        raise InvalidRequest("Send no body, or a JSON object such as {\"subject\": \"user-42\"}.")
    subject = body.get("subject") if body else None
    token, claims, name = issue_for_file(current_app.config, file_id, request.headers.get("Authorization"), subject)
    body = {
        "token": token,
        "file_id": claims.file_id,
        "expires_at": iso_utc(claims.expires_at),
        "queue_url": url_for("queue.stream", token=token),
        "status_url": url_for("queue.status", token=token),
        "download_url": download_url(token, name),
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"  # it carries a credential
    return response, 201
