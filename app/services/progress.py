"""A download's progress as the server counts it (bytes the client acknowledged)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalog.service import get_file
from ..errors import AppError, NotInQueue
from ..queue.engine import QueueEngine
from ..queue.states import HAS_SLOT, TokenState, client_state
from .feeds import Feed, Pause
from .refusals import refusal
from .tokens import TokenClaims
from .waiting import EventKind, QueueEvent, claims_for

PROGRESS_INTERVAL = 1.0


def progress(engine: QueueEngine, config: Mapping[str, Any], token: str) -> Feed[QueueEvent]:
    """About once a second while the token holds its slot, then ``done`` (with the sha256 to
    compare) or ``error``. Checks the token now, inside the request."""
    claims = claims_for(config, token, allow_expired=True)
    record = get_file(claims.file_id)
    return _events(engine, claims, record.size, record.sha256)


def _events(engine: QueueEngine, claims: TokenClaims, size: int, sha256: str) -> Feed[QueueEvent]:
    # the rate is the queue's own measure of the download (over its recent reports, from the
    # first): the ETA of the waiter behind it and this one are the same figure
    while True:
        try:
            view = engine.status([claims.token_id]).tokens[claims.token_id]
        except AppError:
            yield Pause(PROGRESS_INTERVAL)  # the store is away: the download may go on; ask again
            continue
        if view.state == TokenState.SPENT:
            yield QueueEvent(EventKind.DONE, {"bytes": size, "size": size, "sha256": sha256})
            return
        if view.state not in HAS_SLOT:
            error = refusal(view.state, position=view.position) or NotInQueue(
                "The download stopped and its slot went to the next person; join the line again.")
            yield QueueEvent(EventKind.ERROR, error.to_dict())
            return
        sent = min(view.bytes, size)
        yield QueueEvent(EventKind.PROGRESS, {
            "state": client_state(view.state), "bytes": sent, "size": size,
            "rate_bytes_per_second": view.rate,
            "eta_seconds": round((size - sent) / view.rate) if view.rate > 0 else None,
        })
        yield Pause(PROGRESS_INTERVAL)
