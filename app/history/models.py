"""Database model of one admitted download."""
from __future__ import annotations

from ..extensions import db


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
    bytes_sent = db.Column(db.BigInteger, nullable=False, default=0)  # acknowledged, re-sent ones too
    # of bytes_sent, those the client had acknowledged before (a resume from before what it had):
    # bytes_sent - bytes_resent never exceeds the file's size
    bytes_resent = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    # an Outcome (app/queue/states.py): completed | left | no_show | stalled | abandoned | removed
    outcome = db.Column(db.String(16), nullable=True)
    place_drawn = db.Column(db.Integer, nullable=True)  # a scheduled release's shuffle put it here


class AuditEntry(db.Model):
    """One change an operator made to the queue: who, when, what."""

    __tablename__ = "audit_log"

    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(db.DateTime(timezone=True), nullable=False, index=True)
    actor = db.Column(db.String(128), nullable=False)
    # settings | pause | resume | drain | remove | release
    action = db.Column(db.String(32), nullable=False)
    details = db.Column(db.JSON, nullable=False, default=dict)
