"""Issue 10: the service on a Redis Cluster of three primaries (started once for the module)."""
from __future__ import annotations

import hashlib
import time

import requests

from app.queue.keys import QueueKeys
from testbed.servers import wait_until

from .helpers.failover import carried_on, healthy
from .helpers.http import serve_in_order, slow_holder, start_waiters, token_id
from .helpers.queue import ActiveMonitor, history

SIZE = 2 << 20


def test_flow_on_a_cluster_in_order_never_over_capacity(app, cluster, gunicorn, make_file, settings):
    """Queue, sharded events, history (the journal on the slot's primary) and downloads."""
    file_id, path = make_file("c.bin", size=SIZE)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    server = gunicorn(workers=2, REDIS_URL=cluster.url, QUEUE_CAPACITY=2, ADMIT_TIMEOUT=30)
    assert requests.get(f"{server.url}/healthz", timeout=5).json()["checks"]["redis"] == "ok"
    monitor = ActiveMonitor(cluster.url, settings["QUEUE_NAME"])
    holders = [slow_holder(server, file_id) for _ in range(2)]  # both slots held: a line forms
    waiters, order = start_waiters([server.url], file_id, 10)
    assert [w.position for w in waiters] == list(range(1, 11))
    for holder in holders:
        assert len(holder.read(SIZE)) == SIZE
        holder.close()
    for waiter in waiters:
        waiter.join(120)
    monitor.stop()
    assert sorted(order) == sorted(w.token for w in waiters)
    assert {w.result for w in waiters} == {(200, expected, SIZE)}
    assert monitor.max_active == 2 and monitor.events >= 12  # one per admission at least
    rows = wait_until(lambda: (r := history(app)) and len(r) == 12 and all(x["outcome"] for x in r) and r,
                      timeout=20, message="12 history rows")
    assert {r["outcome"] for r in rows} == {"completed"}
    joined = [r["joined_at"] for r in rows]  # in admission order
    assert joined == sorted(joined)  # first come, first served
    keys = QueueKeys(settings["QUEUE_NAME"])
    assert cluster.owner(keys.journal).client().xlen(keys.journal) == 0  # recorded, acknowledged, trimmed


def test_token_issuance_is_limited_per_address_on_a_cluster(cluster, gunicorn, make_file):
    """The rate limiter's keys spread over the cluster's nodes (each is one key, safe anywhere)."""
    file_id, _ = make_file()
    server = gunicorn(workers=2, REDIS_URL=cluster.url, TOKEN_RATE_LIMIT="3/minute", TRUSTED_PROXY_COUNT=1)
    answers: dict[str, list[int]] = {}
    for n in range(30):
        address = f"198.51.100.{n + 1}"
        answers[address] = [requests.post(f"{server.url}/api/v1/files/{file_id}/tokens", timeout=10,
                                          headers={"X-Forwarded-For": address}).status_code for _ in range(4)]
    assert set(map(tuple, answers.values())) == {(201, 201, 201, 429)}
    holding = [n for n in cluster.nodes if any(b"dq-limits" in k for k in n.client().scan_iter(count=1000))]
    assert len(holding) >= 2


def test_the_queue_slot_migrates_mid_queue(cluster, gunicorn, make_file, settings):
    """Resharding moves the queue's slot while a download runs and five wait: every waiter keeps
    its place, the hubs follow their subscription to the new node, the line moves on in order."""
    file_id, path = make_file("m.bin", size=SIZE)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    server = gunicorn(workers=2, REDIS_URL=cluster.url, QUEUE_CAPACITY=1, ADMIT_TIMEOUT=30)
    holder = slow_holder(server, file_id)
    waiters, order = start_waiters([server.url], file_id, 5)
    keys = QueueKeys(settings["QUEUE_NAME"])
    source = cluster.owner(keys.waiting)
    target = next(n for n in cluster.nodes if n is not source)
    assert cluster.move_slot(keys.waiting, target) >= 5
    slot = source.client().cluster("keyslot", keys.waiting)
    assert cluster.owner(keys.waiting) is target and source.client().cluster("countkeysinslot", slot) == 0
    # the queue answers from its new node, the places unchanged
    status = requests.get(f"{server.url}/api/v1/queue/{waiters[2].token}/status", timeout=10)
    assert (status.status_code, status.json().get("position")) == (200, 3), status.text
    time.sleep(1.5)  # the hubs' subscriptions were ended by the old node; they subscribe again
    serve_in_order(holder, SIZE, waiters, order, expected, first_within=10)  # over the new subscription
    last = token_id(waiters[-1].token)  # its completion lands with the server's last progress report
    wait_until(lambda: target.client().zscore(keys.key("spent"), last) is not None, message="the last one spent")


def test_a_tls_cluster_loses_the_queues_primary_mid_queue_and_nothing_is_lost(app, tls_cluster, gunicorn,
                                                                               make_file, settings):
    """Issue 21: ``rediss+cluster://`` (TLS to every node), three primaries with a replica each;
    the primary of the queue's slot dies with a download running and six waiting on two hosts:
    its replica is promoted and the queue goes on, every place kept, one at a time, in order."""
    file_id, path = make_file("r.bin", size=SIZE)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    env = dict(REDIS_URL=tls_cluster.url, REDIS_TLS_CA=str(tls_cluster.tls[0]), REDIS_WAIT_REPLICAS=1,
               QUEUE_CAPACITY=1, ADMIT_TIMEOUT=30, STALL_TIMEOUT=30)
    hosts = [gunicorn(workers=1, **env), gunicorn(workers=1, **env)]
    holder = slow_holder(hosts[0], file_id)
    waiters, order = start_waiters([h.url for h in hosts], file_id, 6)
    keys = QueueKeys(settings["QUEUE_NAME"])
    old = tls_cluster.owner(keys.journal)
    old.stop()  # the last join was acknowledged just now: WAIT put it on the replica
    killed = time.monotonic()
    wait_until(lambda: tls_cluster.owner(keys.journal) is not old and tls_cluster.healthy(), timeout=60,
               interval=0.2, message="the replica promoted")
    wait_until(lambda: all(healthy(h.url) for h in hosts), timeout=30, interval=0.2, message="both hosts")
    followed = time.monotonic() - killed
    carried_on(app, [h.url for h in hosts], holder, SIZE, waiters, order, expected, first_within=30,
               history_within=30)
    print(f"followed the promotion in {followed:.1f} s")
