"""Issue 10: the service behind Redis Sentinel (a primary, a replica, three Sentinels), with a
failover mid-queue; issue 21: the same over TLS only (``rediss+sentinel://``). Each group is
started once for the module."""
from __future__ import annotations

import hashlib
import time

import requests

from testbed.servers import wait_until

from .helpers.http import serve_in_order, slow_holder, start_waiters
from .helpers.queue import history

SIZE = 2 << 20


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_failover_mid_queue_keeps_every_place_and_the_capacity(app, sentinel, gunicorn, make_file):
    file_id, path = make_file("s.bin", size=SIZE)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    env = dict(REDIS_URL=sentinel.url, QUEUE_CAPACITY=1, ADMIT_TIMEOUT=30, STALL_TIMEOUT=30,
               **({"REDIS_TLS_CA": str(sentinel.tls[0])} if sentinel.tls else {}))
    hosts = [gunicorn(workers=1, **env), gunicorn(workers=1, **env)]
    holder = slow_holder(hosts[0], file_id)  # a download running through the failover
    waiters, order = start_waiters([h.url for h in hosts], file_id, 6)  # on both hosts in turn
    old = sentinel.primary.port
    sentinel.primary.stop()  # the last join was acknowledged just now: WAIT put it on the replica
    killed = time.monotonic()
    wait_until(lambda: sentinel.primary_port() != old, timeout=30, interval=0.2, message="a new primary")
    wait_until(lambda: all(healthy(h.url) for h in hosts), timeout=15, interval=0.2, message="both hosts")
    followed = time.monotonic() - killed
    sentinel.primary.start()  # the old primary returns, empty, on its old port
    for n, waiter in enumerate(waiters):
        status = requests.get(f"{hosts[n % 2].url}/api/v1/queue/{waiter.token}/status", timeout=10)
        assert (status.status_code, status.json()["position"]) == (200, n + 1)
    serve_in_order(holder, SIZE, waiters, order, expected, first_within=15)
    rows = wait_until(lambda: (r := history(app)) and len(r) == 7 and all(x["outcome"] for x in r) and r,
                      timeout=20, message="7 history rows")
    assert {r["outcome"] for r in rows} == {"completed"}
    spans = [(r["admitted_at"], r["finished_at"]) for r in rows]
    assert all(sum(1 for a, f in spans if a <= start < f) <= 1 for start, _ in spans)  # never two at once
    # the returning primary was never written to: every script ran on the new one
    stats = sentinel.primary.client().info("commandstats")
    assert not {"cmdstat_evalsha", "cmdstat_eval"} & set(stats)
    assert followed < 15, followed
    print(f"followed the failover in {followed:.1f} s")
