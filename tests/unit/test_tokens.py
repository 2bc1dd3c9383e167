"""Signed, expiring download tokens (no Redis, no database)."""
from __future__ import annotations

import pytest

from app.errors import InvalidToken, TokenExpired
from app.queue.constants import is_id
from app.services.tokens import api_key_matches, issue_token, verify_token

SECRET = "unit-secret"


def test_token_signed_with_another_key_is_invalid():
    token, _ = issue_token("another-key", 1, 60)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)



def test_a_token_carries_a_valid_id_its_file_and_its_expiry():
    token, claims = issue_token(SECRET, 7, 60)
    assert is_id(claims.token_id)
    assert verify_token(SECRET, token) == claims
    assert verify_token(["old", SECRET], token) == claims  # a rotation keeps the old key as a fallback
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token, file_id=8)
    expired, _ = issue_token(SECRET, 7, -1)
    with pytest.raises(TokenExpired):
        verify_token(SECRET, expired)
    assert verify_token(SECRET, expired, now=0).file_id == 7


def test_api_keys_compare_as_bearer_only():
    assert api_key_matches("k", "Bearer k")
    assert not api_key_matches("k", "Bearer x") and not api_key_matches("k", "k") and not api_key_matches(None, "Bearer ")
