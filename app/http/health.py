"""``GET /healthz``: 200 when Redis and the database answer, else 503 naming what failed."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..errors import Unavailable
from ..runtime import runtime
from ..services.health import check

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    checks = check(runtime(current_app).engine)
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        raise Unavailable(f"Not answering: {', '.join(failed)}.", checks=checks)
    return jsonify({"status": "ok", "checks": checks})
