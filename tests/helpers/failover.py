"""What a failover of the queue's Redis (Sentinel or Cluster) must leave: every place kept, the
line served in order, one at a time, the history whole."""
from __future__ import annotations

import requests

from testbed.servers import wait_until

from .http import RawDownload, Waiter, serve_in_order
from .queue import history


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def carried_on(app, bases: list[str], holder: RawDownload, size: int, waiters: list[Waiter], order: list[str],
               expected: str, first_within: float, history_within: float) -> None:
    """After the failover: each waiter (joined on ``bases`` in turn) still at its place, then the
    holder's download and every waiter's served in join order, never two slots at once, all
    ``completed`` in the history."""
    for n, waiter in enumerate(waiters):
        url = f"{bases[n % len(bases)]}/api/v1/queue/{waiter.token}/status"
        # a host may answer the documented 503 (Retry-After) until its client found the new primary
        status = wait_until(lambda url=url: (r := requests.get(url, timeout=10)).status_code != 503 and r,
                            timeout=30, interval=0.5, message="an answer other than 503")
        assert (status.status_code, status.json().get("position")) == (200, n + 1), (n, status.text)
    serve_in_order(holder, size, waiters, order, expected, first_within=first_within)
    count = len(waiters) + 1
    rows = wait_until(lambda: (r := history(app)) and len(r) == count and all(x["outcome"] for x in r) and r,
                      timeout=history_within, message=f"{count} history rows")
    assert {r["outcome"] for r in rows} == {"completed"}
    spans = [(r["admitted_at"], r["finished_at"]) for r in rows]
    assert all(sum(1 for a, f in spans if a <= start < f) <= 1 for start, _ in spans)  # never two at once
