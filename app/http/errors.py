"""Every error a client sees is JSON ``{"error": {"code", "message"}}`` with the right status."""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from ..errors import AppError, Unavailable
from ..runtime import runtime
from .auth import REALM, Challenge

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    416: "range_not_satisfiable",
    429: "rate_limited",
}


def error_response(error: AppError) -> Response:
    if request.blueprint == "pages":  # a person's browser: a page, in the page's language
        response = Response(render_template("error.html", error=error), status=error.status, mimetype="text/html")
    else:
        response = jsonify(error.to_dict())
        response.status_code = error.status
    retry_after = error.extra.get("retry_after")
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    if error.status == 416 and "size" in error.extra:
        response.headers["Content-Range"] = f"bytes */{error.extra['size']}"
    if isinstance(error, Challenge):
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", Bearer realm="{REALM}"'
    if error.status < 500 or error.status == 503:
        runtime(current_app).metrics.refusals.labels(error.code).inc()
    return response


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    error = AppError(exc.description if code < 500 else "Internal server error.")
    error.code = HTTP_CODES.get(code, "internal" if code >= 500 else "http_error")
    error.status = code
    response = error_response(error)
    if isinstance(exc, RateLimitExceeded):
        response.headers["Retry-After"] = str(_retry_after(exc))
    for name in ("Allow", "Content-Range"):
        original = exc.get_response().headers.get(name)
        if original:
            response.headers[name] = original
    return response


def _retry_after(exc: RateLimitExceeded) -> int:
    limit = exc.limit.limit
    return max(1, int(limit.get_expiry()))


def _store_down(exc: RedisError) -> Response:
    """Redis reached outside the queue engine (the rate limiter of token issuance) is down:
    refuse with 503 like every other route rather than issue tokens without a limit."""
    log.warning("redis unavailable: %s", exc)
    return error_response(Unavailable("The queue store is unavailable.", retry_after=5))


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(AppError())


def register(app: Flask) -> None:
    app.register_error_handler(AppError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RedisError, _store_down)
    app.register_error_handler(Exception, _unexpected)
