"""Issuing download tokens for catalog files (reads the catalog, writes nothing)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalog.service import get_file
from ..errors import Forbidden, Unauthorized
from .tokens import TokenClaims, api_key_matches, issue_token


def issue_for_file(config: Mapping[str, Any], file_id: int, authorization: str | None) -> tuple[str, TokenClaims, str]:
    """A signed token for ``file_id`` and the file's name; private files need the issuer API key."""
    record = get_file(file_id)
    if not record.public:
        expected = config["ISSUER_API_KEY"]
        if not authorization:
            raise Unauthorized("This file is private: send Authorization: Bearer <issuer API key>.")
        if not api_key_matches(expected, authorization):
            raise Forbidden("The issuer API key is not valid.")
    token, claims = issue_token(config["SECRET_KEY"], record.id, config["TOKEN_TTL"])
    return token, claims, record.name
