"""Operator credentials: a bearer token (scripts, Prometheus) or HTTP basic auth (browsers).

A missing credential is 401 with a challenge (a browser then asks for it); a wrong one 403.
Basic auth takes the key as the password; the user name is only recorded as who acted.
"""
from __future__ import annotations

import hmac

from flask import request

from ..errors import Forbidden, Unauthorized

REALM = "download-queue"


class Challenge(Unauthorized):
    """401 whose response carries ``WWW-Authenticate``."""


def presented() -> tuple[str | None, str | None]:
    """(key, user) from ``Authorization: Bearer <key>`` or basic auth (``user:key``)."""
    auth = request.authorization
    if auth is None:
        return None, None
    if auth.type == "bearer":
        return auth.token, None
    if auth.type == "basic":
        return auth.password, auth.username or None
    return None, None


def require(expected: str | None, what: str, disabled: str) -> str | None:
    """Check the request's key against ``expected``; returns the basic-auth user, if any."""
    if not expected:
        raise Forbidden(disabled)
    key, user = presented()
    if not key:
        raise Challenge(f"{what} needs a key: 'Authorization: Bearer <key>' or basic auth.")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise Forbidden(f"The {what} key is not valid.")
    return user
