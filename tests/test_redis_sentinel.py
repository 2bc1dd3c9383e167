"""Issue 10: the service behind Redis Sentinel (a primary, a replica, three Sentinels), with a
failover mid-queue; issue 21: the same over TLS only (``rediss+sentinel://``). Each group is
started once for the module."""
from __future__ import annotations

import hashlib
import time

from testbed.servers import wait_until

from .helpers.failover import carried_on, healthy
from .helpers.http import slow_holder, start_waiters

SIZE = 2 << 20


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
    carried_on(app, [h.url for h in hosts], holder, SIZE, waiters, order, expected, first_within=15,
               history_within=20)
    # the returning primary was never written to: every script ran on the new one
    stats = sentinel.primary.client().info("commandstats")
    assert not {"cmdstat_evalsha", "cmdstat_eval"} & set(stats)
    assert followed < 15, followed
    print(f"followed the failover in {followed:.1f} s")
