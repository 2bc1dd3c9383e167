"""The HTTP layer: blueprints that parse requests and render responses, nothing more."""
from __future__ import annotations

from flask import Flask


def register_http(app: Flask) -> None:
    from . import downloads, errors, health, pages, queue, ratelimit, seed, tokens

    errors.register(app)
    for module in (health, pages, tokens, queue, downloads, seed):
        app.register_blueprint(module.bp)
    ratelimit.install(app)
