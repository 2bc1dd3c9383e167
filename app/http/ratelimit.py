"""Rate limits of token issuance, per client address, stored in Redis (Flask-Limiter).

The limiter is built per app (not a module singleton) because Flask-Limiter keeps the
storage and key prefix of the first app it was bound to.
"""
from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# every route that hands out tokens shares one budget per client address
ISSUING_ENDPOINTS = ("tokens.create_token", "seed.generate")


def install(app: Flask) -> Limiter:
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        headers_enabled=True,
    )
    issuance = limiter.shared_limit(lambda: app.config["TOKEN_RATE_LIMIT"], scope="token-issuance")
    for endpoint in ISSUING_ENDPOINTS:
        app.view_functions[endpoint] = issuance(app.view_functions[endpoint])
    return limiter
