"""A download's progress as the server counts it (bytes the client acknowledged)."""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..catalog.service import get_file
from ..errors import AppError, NotInQueue
from ..queue.engine import QueueEngine
from ..queue.states import HAS_SLOT, TokenState, client_state
from .refusals import refusal
from .tokens import TokenClaims
from .waiting import EventKind, QueueEvent, claims_for

PROGRESS_INTERVAL = 1.0


def progress(engine: QueueEngine, config: Mapping[str, Any], token: str) -> Iterator[QueueEvent]:
    """About once a second while the token holds its slot, then ``done`` (with the sha256 to
    compare) or ``error``. Checks the token now, inside the request."""
    claims = claims_for(config, token, allow_expired=True)
    record = get_file(claims.file_id)
    return _events(engine, claims, record.size, record.sha256)


def _events(engine: QueueEngine, claims: TokenClaims, size: int, sha256: str) -> Iterator[QueueEvent]:
    last: tuple[float, int] | None = None
    rate = 0.0
    while True:
        try:
            view = engine.status([claims.token_id]).tokens[claims.token_id]
        except AppError:
            time.sleep(PROGRESS_INTERVAL)  # the store is away: the download may go on; ask again
            continue
        if view.state == TokenState.SPENT:
            yield QueueEvent(EventKind.DONE, {"bytes": size, "size": size, "sha256": sha256})
            return
        if view.state not in HAS_SLOT:
            error = refusal(view.state, position=view.position) or NotInQueue(
                "The download stopped and its slot went to the next person; join the line again.")
            yield QueueEvent(EventKind.ERROR, error.to_dict())
            return
        now, sent = time.monotonic(), min(view.bytes, size)
        if last is not None and now > last[0]:
            sample = max(0.0, (sent - last[1]) / (now - last[0]))
            rate = sample if rate == 0 else 0.7 * rate + 0.3 * sample  # smoothed over a few seconds
        last = (now, sent)
        yield QueueEvent(EventKind.PROGRESS, {
            "state": client_state(view.state), "bytes": sent, "size": size,
            "rate_bytes_per_second": round(rate),
            "eta_seconds": round((size - sent) / rate) if rate > 0 else None,
        })
        time.sleep(PROGRESS_INTERVAL)
