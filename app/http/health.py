"""``GET /healthz``: 200 when Redis and the database answer (``degraded`` when only the file store
does not: the queue runs and cached files are served), else 503 naming what failed."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..errors import Unavailable
from ..runtime import runtime
from ..services.health import ESSENTIAL, check

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    rt = runtime(current_app)
    checks = check(rt.engine, rt.files.store)
    failed = [name for name in ESSENTIAL if checks[name] != "ok"]
    if failed:
        raise Unavailable(f"Not answering: {', '.join(failed)}.", checks=checks)
    return jsonify({"status": "ok" if checks["storage"] == "ok" else "degraded", "checks": checks})
