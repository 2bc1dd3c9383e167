"""Downloading an admitted token's file: checks, the slot's connection, the transfer."""
from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from werkzeug.datastructures import Range

from ..catalog.models import File
from ..catalog.service import file_path, get_file
from ..errors import AppError, Unavailable
from ..queue.engine import Snapshot
from ..queue.states import HELD, Reply
from ..runtime import runtime
from ..storage.ranges import Selection, evaluate_preconditions, select
from ..storage.sender import Transfer
from .refusals import not_admitted, refusal
from .tokens import TokenClaims
from .waiting import claims_for


@dataclass(frozen=True)
class Download:
    claims: TokenClaims
    record: File
    path: str
    size: int
    etag: str
    last_modified: datetime
    selection: Selection


def describe(app: Flask, token: str, range_: Range | None, if_range: str | None) -> Download:
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


def not_modified(download: Download, headers: Mapping[str, str], method: str) -> bool:
    """The request's conditionals: True for 304; a failed If-Match/If-Unmodified-Since raises 412."""
    return evaluate_preconditions(headers, method, download.etag, download.last_modified) is not None


def _refuse(state: str | None, position: int | None) -> None:
    """The error a client sees when its token may not download now."""
    raise refusal(state, position=position or 0) or not_admitted()


def check_turn(app: Flask, download: Download) -> None:
    """For HEAD: the token must hold a slot; nothing is registered."""
    token_id = download.claims.token_id
    view = runtime(app).engine.status([token_id]).tokens[token_id]
    if view.state not in HELD:
        _refuse(view.state, view.position)


@dataclass(frozen=True)
class Opened:
    """A download connection the queue accepted: on the token's slot, or a completed token's tail."""

    conn_id: str
    tail: bool


def begin(app: Flask, download: Download) -> Opened:
    """Open a connection on the token's slot (or its resumable tail)."""
    conn_id = f"c{uuid.uuid4().hex}"
    sel = download.selection
    snap = runtime(app).engine.start(download.claims.token_id, conn_id, sel.length, sel.start)
    if snap.state not in (Reply.OK, Reply.TAIL):
        _refuse(snap.state, snap.position)
    return Opened(conn_id, snap.state == Reply.TAIL)


def transfer(app: Flask, download: Download, opened: Opened, sock: Any = None) -> Transfer:
    """The response body; what the client acknowledged renews the lease and completes the token.

    A completed token's tail is served without a slot and reports nothing. A final report that
    finds Redis away is kept by the hub and retried."""
    rt = runtime(app)
    engine = rt.engine
    token_id, conn_id = download.claims.token_id, opened.conn_id
    first, range_end = download.selection.start, download.selection.end
    reported = counted = 0

    def on_progress(acked: int, closing: bool, handed: bool) -> bool:
        nonlocal reported, counted
        rt.metrics.sent_bytes.inc(acked - counted)
        counted = acked
        if opened.tail:
            return True
        delta, reported_before = acked - reported, reported
        reported = acked

        def report() -> Snapshot:
            return engine.progress(token_id, conn_id, first, first + acked, delta, closing, range_end, handed,
                                   paced=share is not None and share.held_back)

        if closing:
            rt.hub.call_or_retry(report)
            return True
        try:
            return report().state != Reply.GONE
        except AppError:
            reported = reported_before  # not heard: the next report carries these bytes too
            return True  # the store is down: keep serving, the lease decides later

    share = rt.bandwidth.join(token_id, conn_id) if rt.bandwidth is not None else None
    fh = open(download.path, "rb")  # noqa: SIM115 - closed by Transfer.close
    return Transfer(
        fh,
        first,
        range_end,
        on_progress,
        sock=sock,
        share=share,
        stall_timeout=engine.settings.stall_timeout,
    )


def hand_off(app: Flask, download: Download, opened: Opened) -> str:
    """X-Accel-Redirect mode: nginx sends the bytes; the hand-off counts them as sent."""
    engine = runtime(app).engine
    sel = download.selection
    if not opened.tail:
        engine.progress(download.claims.token_id, opened.conn_id, sel.start, sel.end, sel.length,
                        closing=True, range_end=sel.end)
    return app.config["X_ACCEL_REDIRECT"].rstrip("/") + "/" + download.record.path.lstrip(os.sep)
