"""The HTTP layer: blueprints that parse requests and render responses, nothing more."""
from __future__ import annotations

from flask import Flask, request


def register_http(app: Flask) -> None:
    from . import admin, downloads, errors, health, metrics, openapi, pages, queue, ratelimit, seed, tokens
    from .access import ROUTE_KEY, RequestLog

    errors.register(app)
    for module in (health, pages, tokens, queue, downloads, seed, admin, metrics, openapi):
        app.register_blueprint(module.bp)

    @app.before_request
    def name_route() -> None:
        request.environ[ROUTE_KEY] = request.url_rule.rule if request.url_rule else "unmatched"

    ratelimit.install(app)
    app.wsgi_app = RequestLog(  # type: ignore[method-assign]
        app.wsgi_app, trust_request_id=app.config["TRUSTED_PROXY_COUNT"] > 0, enabled=app.config["ACCESS_LOG"]
    )
