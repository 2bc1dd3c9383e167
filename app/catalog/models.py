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
    # where the bytes are: a path under FILES_ROOT, or s3://bucket/key
    path = db.Column(db.String(1024), nullable=False, unique=True)
    size = db.Column(db.BigInteger, nullable=False)
    content_type = db.Column(db.String(255), nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    public = db.Column(db.Boolean, nullable=False, default=False)
    etag = db.Column(db.String(255))  # the store's ETag when registered: a read of other bytes is refused
    modified_at = db.Column(db.DateTime(timezone=True))  # the Last-Modified downloads carry
    withdrawn = db.Column(db.Text)  # why a verification took it out of serving (None: served)
    # a scheduled release: whoever joins before it is placed in a random order at it
    release_at = db.Column(db.DateTime(timezone=True))
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=utcnow)
