"""The HTTP layer: blueprints that parse requests and render responses, nothing more."""
from __future__ import annotations

from flask import Flask, Response, request


def register_http(app: Flask) -> None:
    from . import (
        admin,
        checksums,
        downloads,
        errors,
        files,
        health,
        i18n,
        metrics,
        openapi,
        pages,
        queue,
        ratelimit,
        seed,
        tokens,
    )
    from .access import ROUTE_KEY, RequestLog

    errors.register(app)
    i18n.install(app)
    for module in (health, pages, checksums, files, tokens, queue, downloads, seed, admin, metrics, openapi):
        app.register_blueprint(module.bp)

    @app.before_request
    def name_route() -> None:
        request.environ[ROUTE_KEY] = request.url_rule.rule if request.url_rule else "unmatched"

    @app.after_request
    def caching(response: Response) -> Response:
        """Live JSON is never stored; pages briefly; Retry-After only where RFC 9110 gives it a
        meaning (Flask-Limiter adds it to successes too)."""
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        if request.endpoint in ("static", "pages.favicon"):
            # static URLs carry their content's hash: keep them for good; the icon's is fixed
            versioned = request.endpoint == "static" and "v" in request.args
            response.headers["Cache-Control"] = "max-age=31536000, immutable" if versioned else "max-age=86400"
            response.headers.pop("Expires", None)
        elif "Cache-Control" not in response.headers:
            if response.mimetype == "application/json":
                response.headers["Cache-Control"] = "no-store"
            elif response.mimetype == "text/html":
                response.headers["Cache-Control"] = "max-age=60"
        return response

    ratelimit.install(app)
    app.wsgi_app = RequestLog(  # type: ignore[method-assign]
        app.wsgi_app, trust_request_id=app.config["TRUSTED_PROXY_COUNT"] > 0, enabled=app.config["ACCESS_LOG"]
    )
