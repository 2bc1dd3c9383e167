"""``GET /metrics``: Prometheus text format, behind ``METRICS_TOKEN`` (bearer).

Without a token the endpoint is open in local runs and refused in production.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from ..config import LOCAL_ENVS
from ..metrics import CONTENT_TYPE
from ..runtime import runtime
from .auth import require

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    config = current_app.config
    if config["METRICS_TOKEN"] or config["APP_ENV"] not in LOCAL_ENVS:
        require(config["METRICS_TOKEN"], "metrics", "Metrics are disabled: set METRICS_TOKEN to turn them on.")
    rt = runtime(current_app)
    body = rt.metrics.exposition(rt.engine.inspect(0))
    return Response(body, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
