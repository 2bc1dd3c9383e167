"""``GET /api/v1/files``: the public files as JSON, so a script or a terminal can find what to ask
a token for."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from ..catalog.models import File
from ..catalog.service import list_files

bp = Blueprint("files", __name__)


def listed(record: File) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "size": record.size,
        "sha256": record.sha256,
        "release_at": record.release_at.isoformat().replace("+00:00", "Z") if record.release_at else None,
        "page_url": url_for("pages.file_page", file_id=record.id),
        "tokens_url": url_for("tokens.create_token", file_id=record.id),
    }


@bp.get("/api/v1/files")
def public_files() -> Response:
    return jsonify({"files": [listed(record) for record in list_files(public_only=True)]})
