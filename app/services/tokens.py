"""Signed, expiring download tokens bound to one file.

Issuing a token touches neither Redis nor the database beyond reading the catalog (the
seed's first fix): everything a later request needs is inside the signed token.
"""
from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from ..errors import InvalidToken, TokenExpired

SALT = "download-token.v1"
MAX_LIFETIME = 10 * 365 * 86400  # an expiry further away than this is not one we issued


@dataclass(frozen=True)
class TokenClaims:
    token_id: str
    file_id: int
    expires_at: int
    issued: bool = False  # issued with the issuer API key (a site issuing for its own users)
    subject: str | None = None  # whom the issuer issued it for: its places count against them

    @property
    def ttl(self) -> int:
        return max(0, self.expires_at - int(time.time()))


def _serializer(secret_keys: str | Sequence[str]) -> URLSafeSerializer:
    """Signs with the last key; verifies with any (a rotation keeps old keys as fallbacks)."""
    return URLSafeSerializer(secret_keys if isinstance(secret_keys, str) else list(secret_keys), salt=SALT)


def verification_keys(config: Mapping[str, Any]) -> list[str]:
    """``SECRET_KEY_FALLBACKS`` then ``SECRET_KEY``: tokens signed before a rotation stay valid."""
    return [*config["SECRET_KEY_FALLBACKS"], config["SECRET_KEY"]]


def issue_token(
    secret_key: str, file_id: int, ttl: int, issued: bool = False, subject: str | None = None,
) -> tuple[str, TokenClaims]:
    claims = TokenClaims(secrets.token_urlsafe(12), file_id, int(time.time()) + ttl, issued, subject)
    payload: dict[str, Any] = {"t": claims.token_id, "f": file_id, "e": claims.expires_at}
    if issued:
        payload["i"] = 1
    if subject:
        payload["s"] = subject
    return _serializer(secret_key).dumps(payload), claims


def verify_token(
    secret_keys: str | Sequence[str], token: str, file_id: int | None = None, now: float | None = None
) -> TokenClaims:
    """Return the token's claims or raise ``InvalidToken`` / ``TokenExpired`` (checked at ``now``)."""
    try:
        payload = _serializer(secret_keys).loads(token)
        subject = payload.get("s")
        claims = TokenClaims(str(payload["t"]), int(payload["f"]), int(payload["e"]), bool(payload.get("i")),
                             None if subject is None else str(subject))
    except (BadSignature, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidToken("The token is invalid or has been tampered with.") from exc
    if not 0 < claims.expires_at < time.time() + MAX_LIFETIME or "|" in claims.token_id:
        raise InvalidToken("The token is invalid.")
    if file_id is not None and claims.file_id != file_id:
        raise InvalidToken("The token was issued for another file.")
    if claims.expires_at <= (time.time() if now is None else now):
        raise TokenExpired("The token has expired; request a new one.")
    return claims


def api_key_matches(expected: str | None, authorization: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer <key>`` header."""
    if not expected or not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), expected.encode())


def iso_utc(epoch: float) -> str:
    """An ISO 8601 UTC timestamp (``...Z``) for JSON replies."""
    return datetime.fromtimestamp(int(epoch), tz=UTC).isoformat().replace("+00:00", "Z")
