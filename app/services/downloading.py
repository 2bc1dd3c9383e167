"""Downloading an admitted token's file: which bytes, the slot's connection, the transfer.

``answer`` owns the whole sequence (describe, conditionals, turn check or connection, transfer
or hand-off) and returns what the HTTP layer renders.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Range

from ..catalog.models import File
from ..catalog.service import get_file
from ..delivery.bandwidth import HostBandwidth
from ..delivery.ranges import Selection, evaluate_preconditions, select
from ..delivery.sender import Transfer
from ..errors import AppError, WaitingInLine
from ..queue.engine import QueueEngine
from ..queue.eta import eta_seconds
from ..queue.reporter import Reporter
from ..queue.reports import ProgressReport
from ..queue.states import HAS_SLOT, Reply, TokenState
from ..storage.errors import FileWithdrawn
from ..storage.files import Files
from ..storage.sources import Source
from .refusals import not_admitted, refusal
from .tokens import TokenClaims
from .waiting import claims_for, join_claims

# a download's first reports (0.15 and 0.5 s in) go at once, not with its process's round: two of
# them measure what its client takes, which the ETA of the waiter behind it (a small file ends
# within seconds) and an egress budget (it counts as MIN_RATE until then) wait for
MEASURING_REPORTS = 2
WAIT_RETRY_MAX = 10  # seconds: a client waiting by retrying asks at least this often (its presence)


@dataclass(frozen=True)
class Serving:
    """What serving downloads needs, built once per process by the runtime."""

    engine: QueueEngine
    reporter: Reporter  # the process's reports of its connections, sent together
    bandwidth: HostBandwidth | None  # the host's BANDWIDTH_LIMIT, shared by its downloads
    count_sent: Callable[[int], None]  # bytes the clients acknowledged (metrics)
    files: Files  # where the bytes are
    config: Mapping[str, Any]  # X_ACCEL_REDIRECT, the secret keys


@dataclass(frozen=True)
class DownloadPlan:
    """Which bytes of which file a download request gets, and the file's validators."""

    claims: TokenClaims
    record: File
    size: int
    etag: str
    last_modified: datetime
    selection: Selection


@dataclass(frozen=True)
class Answer:
    """What to send: headers of ``plan`` with ``status``, and the bytes (``body``) or nginx's
    internal location for them (``accel_path``); neither for 304 and HEAD."""

    plan: DownloadPlan
    status: int
    body: Transfer | None = None
    accel_path: str | None = None


def answer(serving: Serving, token: str, method: str, range_: Range | None, headers: Mapping[str, str],
           sock: Any = None, client_addr: str | None = None) -> Answer:
    """The download request from start to finish; refusals raise the error the client sees.

    A client whose copy is current hears so without spending the token or touching the queue.
    With ``client_addr``, a GET by a token whose turn has not come joins the line (see
    ``wait_in_line``): a terminal waits by retrying, with no script."""
    plan = describe(serving.config, serving.files, token, range_, headers.get("If-Range"))
    if evaluate_preconditions(headers, method, plan.etag, plan.last_modified) is not None:
        return Answer(plan, 304)
    status = 206 if plan.selection.partial else 200
    if method == "HEAD":
        check_turn(serving.engine, plan)
        return Answer(plan, status)
    opened = begin(serving.engine, plan, client_addr)
    prefix = serving.config["X_ACCEL_REDIRECT"]
    if prefix:
        return Answer(plan, 200, accel_path=hand_off(serving.engine, plan, opened, prefix))
    try:
        source = serving.files.open(plan.record, plan.selection.start, plan.selection.end)
    except AppError:
        close(serving.engine, plan, opened)
        raise
    return Answer(plan, status, body=transfer(serving, plan, opened, source, sock))


def describe(config: Mapping[str, Any], files: Files, token: str, range_: Range | None,
             if_range: str | None) -> DownloadPlan:
    """Validate the token and work out which bytes of which file the request gets (from the
    catalog: the store is not asked until the bytes are)."""
    claims = claims_for(config, token)
    record = get_file(claims.file_id)
    if record.withdrawn:
        raise FileWithdrawn(f"The file is withdrawn from serving: {record.withdrawn}.")
    etag = f'"{record.sha256[:32]}"'
    last_modified = files.modified(record).astimezone(UTC).replace(microsecond=0)
    selection = select(record.size, range_, if_range, etag, last_modified)
    return DownloadPlan(claims, record, record.size, etag, last_modified, selection)


def _refuse(state: str | None, position: int | None) -> None:
    """The error a client sees when its token may not download now."""
    raise refusal(state, position=position or 0) or not_admitted()


def check_turn(engine: QueueEngine, plan: DownloadPlan) -> None:
    """For HEAD: the token must hold a slot; nothing is registered."""
    token_id = plan.claims.token_id
    view = engine.status([token_id]).tokens[token_id]
    if view.state not in HAS_SLOT:
        _refuse(view.state, view.position)


@dataclass(frozen=True)
class Opened:
    """A download connection the queue accepted: on the token's slot, or a completed token's tail."""

    conn_id: str
    tail: bool


def begin(engine: QueueEngine, plan: DownloadPlan, client_addr: str | None = None) -> Opened:
    """Open a connection on the token's slot (or its resumable tail); with ``client_addr``, a
    token not admitted yet waits in line first."""
    conn_id = f"c{uuid.uuid4().hex}"
    sel = plan.selection
    snap = engine.start(plan.claims.token_id, conn_id, sel.length, sel.start)
    if snap.state in (TokenState.WAITING, TokenState.NONE) and client_addr is not None:
        wait_in_line(engine, plan.claims, client_addr)
        snap = engine.start(plan.claims.token_id, conn_id, sel.length, sel.start)
    if snap.state not in (Reply.OK, Reply.TAIL):
        _refuse(snap.state, snap.position)
    return Opened(conn_id, snap.state == Reply.TAIL)


def wait_in_line(engine: QueueEngine, claims: TokenClaims, client_addr: str) -> None:
    """Join (or renew the place: each request counts as presence, as a poll does); returns when
    the token holds a slot, else raises ``WaitingInLine``: 503 with the place, the ETA and a
    Retry-After short enough to keep the place present (curl --retry and wget wait that long)."""
    snap = join_claims(engine, claims, client_addr, streamed=False)
    if snap.state in HAS_SLOT:
        return
    eta = eta_seconds(snap, snap.position) if snap.position else None
    grace = snap.settings.wait_grace if snap.settings else WAIT_RETRY_MAX
    retry = max(1, min(WAIT_RETRY_MAX, int(grace // 3), eta or WAIT_RETRY_MAX))
    where = f"You are number {snap.position} in line" if snap.position else "You wait for the file's release"
    about = f", about {eta} s to go" if eta is not None else ""
    raise WaitingInLine(f"{where}{about}; ask again in {retry} s and the same request downloads the file.",
                        position=snap.position, eta_seconds=eta, retry_after=retry)


def close(engine: QueueEngine, plan: DownloadPlan, opened: Opened) -> None:
    """End a connection that sent nothing (its bytes could not be read); the slot keeps its
    lease, so the client can try again."""
    if not opened.tail:
        sel = plan.selection
        engine.progress(plan.claims.token_id, opened.conn_id, sel.start, sel.start, 0, closing=True, range_end=sel.end)


def transfer(serving: Serving, plan: DownloadPlan, opened: Opened, source: Source, sock: Any = None) -> Transfer:
    """The response body; what the client acknowledged renews the lease and completes the token.

    A completed token's tail is served without a slot and reports nothing. The reports go with
    the process's next round (``Reporter``); the final one goes at once, and is kept and retried
    by the housekeeping loop while Redis is away."""
    token_id, conn_id = plan.claims.token_id, opened.conn_id
    first, range_end = plan.selection.start, plan.selection.end
    reported = counted = reports = 0

    def on_progress(acked: int, closing: bool, handed: bool) -> bool:
        nonlocal reported, counted, reports
        serving.count_sent(acked - counted)
        counted = acked
        if opened.tail:
            return True
        report = ProgressReport(token_id, conn_id, first, first + acked, acked - reported, range_end, closing,
                                handed, paced=share is not None and share.held_back)
        reported, reports = acked, reports + 1
        if closing:
            serving.reporter.close(report)
            return True
        if reports <= MEASURING_REPORTS:  # the ETA behind it and the budget wait for its speed
            return serving.reporter.send_now(report)
        return serving.reporter.submit(report)

    share = serving.bandwidth.join(token_id, conn_id) if serving.bandwidth is not None else None
    return Transfer(source, first, range_end, on_progress, sock=sock, share=share,
                    stall_timeout=serving.engine.settings.stall_timeout)


def hand_off(engine: QueueEngine, plan: DownloadPlan, opened: Opened, prefix: str) -> str:
    """X-Accel-Redirect mode (local files only): nginx sends the bytes; the hand-off counts
    them as sent."""
    sel = plan.selection
    if not opened.tail:
        engine.progress(plan.claims.token_id, opened.conn_id, sel.start, sel.end, sel.length,
                        closing=True, range_end=sel.end)
    return prefix.rstrip("/") + "/" + plan.record.path.lstrip("/")


