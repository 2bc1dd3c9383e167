"""Database model of a downloadable file."""
from __future__ import annotations

from datetime import UTC, datetime

from ..extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class File(db.Model):
    __tablename__ = "files"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(255), nullable=False)
    path = db.Column(db.String(1024), nullable=False, unique=True)
    size = db.Column(db.BigInteger, nullable=False)
    content_type = db.Column(db.String(255), nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    public = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
