"""Database model of one admitted download."""
from __future__ import annotations

from ..extensions import db

OUTCOMES = ("completed", "left", "no_show", "stalled", "abandoned")


class Download(db.Model):
    __tablename__ = "downloads"

    id = db.Column(db.Integer, primary_key=True)
    token_id = db.Column(db.String(64), nullable=False, unique=True)
    file_id = db.Column(db.Integer, db.ForeignKey("files.id", ondelete="SET NULL"), nullable=True, index=True)
    client_addr = db.Column(db.String(64), nullable=True)
    joined_at = db.Column(db.DateTime(timezone=True), nullable=True)
    admitted_at = db.Column(db.DateTime(timezone=True), nullable=True)
    started_at = db.Column(db.DateTime(timezone=True), nullable=True)
    finished_at = db.Column(db.DateTime(timezone=True), nullable=True)
    bytes_sent = db.Column(db.BigInteger, nullable=False, default=0)
    outcome = db.Column(db.String(16), nullable=True)

    def to_dict(self) -> dict[str, object]:
        def iso(value: object) -> str | None:
            return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

        return {
            "token_id": self.token_id,
            "file_id": self.file_id,
            "client_addr": self.client_addr,
            "joined_at": iso(self.joined_at),
            "admitted_at": iso(self.admitted_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "bytes_sent": self.bytes_sent,
            "outcome": self.outcome,
        }
