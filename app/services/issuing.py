"""Issuing download tokens for catalog files (reads the catalog, writes nothing)."""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ..catalog.service import get_file
from ..errors import Forbidden, InvalidRequest, Unauthorized
from .holders import SUBJECT_MAX
from .tokens import TokenClaims, api_key_matches, issue_token


def _subject(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= SUBJECT_MAX or not value.isprintable():
        raise InvalidRequest(f"subject must be 1 to {SUBJECT_MAX} printable characters.", field="subject")
    return value


def issue_for_file(
    config: Mapping[str, Any], file_id: int, authorization: str | None, subject: object = None,
) -> tuple[str, TokenClaims, str]:
    """A signed token for ``file_id`` and the file's name; private files need the issuer API key.

    A token issued with the key is the issuing site's: its places count against ``subject`` (the
    site's user) when one is given, and against no one otherwise (``services/holders.py``)."""
    record = get_file(file_id)
    expected = config["ISSUER_API_KEY"]
    issued = bool(expected and authorization and authorization.startswith("Bearer "))
    if not record.public and not authorization:
        raise Unauthorized("This file is private: send Authorization: Bearer <issuer API key>.")
    if (issued or not record.public) and not api_key_matches(expected, authorization):
        raise Forbidden("The issuer API key is not valid.")
    if subject is not None and not issued:
        raise Forbidden("Only the issuer API key may name a subject.", field="subject")
    ttl = config["TOKEN_TTL"]
    if record.release_at is not None:  # a token issued before a release lives TOKEN_TTL past it
        ttl += max(0, math.ceil(record.release_at.timestamp() - time.time()))
    token, claims = issue_token(config["SECRET_KEY"], record.id, ttl, issued,
                                None if subject is None else _subject(subject))
    return token, claims, record.name
