"""Downloading an admitted token's file: checks, the slot's connection, the transfer."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from werkzeug.datastructures import IfRange, Range

from ..catalog.models import File
from ..catalog.service import file_path, get_file
from ..errors import AppError, NotInQueue, NotYourTurn, TokenSpent, TooManyConnections, Unavailable
from ..queue.engine import Snapshot
from ..storage.bandwidth import HostShare
from ..storage.ranges import Selection, select
from ..storage.sender import Transfer
from .runtime import runtime
from .tokens import TokenClaims
from .waiting import claims_for

HELD_STATES = ("admitted", "downloading", "paused")


@dataclass(frozen=True)
class Download:
    claims: TokenClaims
    record: File
    path: str
    size: int
    etag: str
    last_modified: datetime
    selection: Selection


def describe(app: Flask, token: str, range_: Range | None, if_range: IfRange | None) -> Download:
    """Validate the token and work out which bytes of which file the request gets."""
    claims = claims_for(app, token)
    record = get_file(claims.file_id)
    path = file_path(app.config["FILES_ROOT"], record)
    try:
        stat = path.stat()
    except OSError as exc:
        raise Unavailable("The file is missing from storage.") from exc
    if stat.st_size != record.size:
        raise Unavailable("The file changed on disk since it was catalogued.")
    etag = f'"{record.sha256[:32]}"'
    last_modified = datetime.fromtimestamp(int(stat.st_mtime), tz=UTC)
    selection = select(record.size, range_, if_range, etag, last_modified)
    return Download(claims, record, str(path), record.size, etag, last_modified, selection)


def _refuse(snap: Snapshot) -> None:
    if snap.state == "waiting":
        raise NotYourTurn(
            f"You are number {snap.position} in line; wait for your turn.", position=snap.position
        )
    if snap.state == "spent":
        raise TokenSpent("This token has already been used for a complete download.")
    if snap.state == "too_many":
        raise TooManyConnections("Too many connections for this token at once.")
    raise NotInQueue("This token is not admitted: join the queue first.")


def check_turn(app: Flask, download: Download) -> None:
    """For HEAD: the token must hold a slot; nothing is registered."""
    snap = runtime(app).engine.status([download.claims.token_id])
    state, position, _lease = snap.tokens[download.claims.token_id]
    if state not in HELD_STATES:
        snap.state, snap.position = state, position
        _refuse(snap)


def begin(app: Flask, download: Download) -> str:
    """Open a connection on the token's slot; returns its id."""
    conn_id = f"c{uuid.uuid4().hex}"
    snap = runtime(app).engine.start(download.claims.token_id, conn_id)
    if snap.state != "ok":
        _refuse(snap)
    return conn_id


def transfer(app: Flask, download: Download, conn_id: str, sock: Any = None) -> Transfer:
    """The response body; its progress renews the lease and finally completes the token."""
    rt = runtime(app)
    engine = rt.engine
    token_id, first = download.claims.token_id, download.selection.start
    reported = 0

    def on_progress(sent: int, closing: bool) -> bool:
        nonlocal reported
        try:
            snap = engine.progress(token_id, conn_id, first, first + sent, sent - reported, closing)
        except AppError:
            return True  # the store is down: keep serving, the lease decides later
        reported = sent
        return snap.state != "gone"

    limit = app.config["BANDWIDTH_LIMIT"]
    share = HostShare(rt.client, engine.keys.prefix, limit, conn_id) if limit else None
    fh = open(download.path, "rb")  # noqa: SIM115 - closed by Transfer.close
    return Transfer(
        fh,
        download.selection.start,
        download.selection.end,
        on_progress,
        sock=sock,
        share=share,
        stall_timeout=engine.settings.stall_timeout,
    )


def hand_off(app: Flask, download: Download, conn_id: str) -> str:
    """X-Accel-Redirect mode: nginx sends the bytes; the hand-off counts them as sent."""
    engine = runtime(app).engine
    sel = download.selection
    engine.progress(download.claims.token_id, conn_id, sel.start, sel.end, sel.length, closing=True)
    return app.config["X_ACCEL_REDIRECT"].rstrip("/") + "/" + download.record.path.lstrip(os.sep)
