"""Fair against bots and rushes, on two real gunicorn hosts sharing one queue: places per client
(MAX_PLACES_PER_CLIENT, the address from a trusted proxy's X-Forwarded-For) and a scheduled
release's shuffled pre-queue."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
import sqlalchemy as sa

from app.extensions import db
from testbed.servers import wait_until
from testbed.sse import sse

from .helpers.http import new_token, token_id
from .helpers.queue import advance, new_engine

ADMIN = "admin-key-for-tests"
HOSTS = dict(QUEUE_CAPACITY=1, TRUSTED_PROXY_COUNT=1, ADMIN_API_KEY=ADMIN, WAIT_GRACE=300)


def join(base: str, token: str, address: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/queue/{token}", headers={"X-Forwarded-For": address}, timeout=10)


def admin_state(base: str) -> dict:
    response = requests.get(f"{base}/api/v1/admin/queue", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def two_hosts(gunicorn, **extra):
    return [gunicorn(**HOSTS, **extra).url, gunicorn(**HOSTS, **extra).url]


def test_one_address_holds_at_most_the_cap_on_either_host_and_a_leave_frees_a_place(gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    hosts = two_hosts(gunicorn, MAX_PLACES_PER_CLIENT=5)
    tokens = [new_token(hosts[0], file_id) for _ in range(20)]
    answers = [join(hosts[n % 2], token, "203.0.113.7") for n, token in enumerate(tokens)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 15
    refused = answers[5].json()["error"]
    assert refused["code"] == "too_many_places" and refused["places"] == 5 and refused["limit"] == 5
    assert {a.json()["state"] for a in answers[:5]} == {"ready", "waiting"}  # one admitted, four waiting
    assert join(hosts[1], tokens[0], "203.0.113.7").status_code == 200  # re-attaching is not a new place
    assert join(hosts[0], new_token(hosts[0], file_id), "203.0.113.8").status_code == 200  # another address

    waiting = next(t for t, a in zip(tokens, answers, strict=False) if a.status_code == 200 and a.json()["state"] == "waiting")
    assert requests.delete(f"{hosts[1]}/api/v1/queue/{waiting}", timeout=10).json()["left"] is True
    assert join(hosts[0], tokens[5], "203.0.113.7").status_code == 200  # the place was free at once
    assert join(hosts[1], tokens[6], "203.0.113.7").status_code == 429

    admitted = next(t for t, a in zip(tokens, answers, strict=False) if a.status_code == 200 and a.json()["state"] == "ready")
    body = requests.get(f"{hosts[0]}/api/v1/downloads/{admitted}", timeout=10)
    assert body.status_code == 200 and len(body.content) == 4096  # finishing frees the slot's place too
    assert join(hosts[1], tokens[6], "203.0.113.7").status_code == 200

    state = admin_state(hosts[1])
    assert state["places"]["top"][0] == {"client": "203.0.113.x", "places": 5}
    assert state["places"]["limit"] == 5 and state["places"]["refused"] >= 16
    metrics = requests.get(f"{hosts[0]}/metrics", timeout=10).text
    assert 'download_queue_joins_refused_total{reason="too_many_places"}' in metrics
    assert 'download_queue_refusals_total{reason="too_many_places"}' in metrics


def test_addresses_of_one_ipv6_64_share_the_cap(gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    hosts = two_hosts(gunicorn, MAX_PLACES_PER_CLIENT=3)
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2:abcd:1:2:3", "2001:db8:1:2::77"]
    codes = [join(hosts[n % 2], new_token(hosts[0], file_id), a).status_code for n, a in enumerate(same_64)]
    assert codes == [200, 200, 200, 429]
    assert join(hosts[0], new_token(hosts[0], file_id), "2001:db8:1:3::1").status_code == 200  # the next /64
    assert {"client": "2001:db8:1:2::/64", "places": 3} in admin_state(hosts[0])["places"]["top"]


def test_the_cap_is_exact_under_200_concurrent_joins_over_two_hosts(gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    hosts = two_hosts(gunicorn, MAX_PLACES_PER_CLIENT=7)
    tokens = [new_token(hosts[0], file_id) for _ in range(200)]
    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda n: join(hosts[n % 2], tokens[n], "198.51.100.20").status_code, range(200)))
    assert codes.count(200) == 7 and codes.count(429) == 193
    assert admin_state(hosts[1])["places"]["top"] == [{"client": "198.51.100.x", "places": 7}]


def test_issuer_subjects_count_per_user_and_tokens_without_one_are_exempt(gunicorn, make_file):
    file_id, _ = make_file("f.bin", size=4096)
    hosts = two_hosts(gunicorn, MAX_PLACES_PER_CLIENT=2, ISSUER_API_KEY="issuer-key")
    key = {"Authorization": "Bearer issuer-key"}

    def issued(subject: str | None) -> str:
        body = {"subject": subject} if subject else None
        response = requests.post(f"{hosts[0]}/api/v1/files/{file_id}/tokens", json=body, headers=key, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    site = "192.0.2.1"  # every user of the issuing site arrives from its address (or its proxy's)
    assert [join(hosts[n % 2], issued("alice"), site).status_code for n in range(3)] == [200, 200, 429]
    assert join(hosts[0], issued("bob"), site).status_code == 200
    assert all(join(hosts[1], issued(None), site).status_code == 200 for _ in range(4))
    refused = requests.post(f"{hosts[0]}/api/v1/files/{file_id}/tokens", json={"subject": "mallory"}, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "subject"
    wrong = requests.post(f"{hosts[0]}/api/v1/files/{file_id}/tokens", headers={"Authorization": "Bearer nope"},
                          timeout=10)
    assert wrong.status_code == 403
    assert requests.post(f"{hosts[0]}/api/v1/files/{file_id}/tokens", json={"subject": ""}, headers=key,
                         timeout=10).status_code == 400


def test_a_lapsed_or_expired_place_is_freed_and_a_cap_set_later_is_exact(redis_client):
    engine = new_engine(redis_client, capacity=1, wait_grace=5, max_places_per_client=0, away_grace=0)
    far = 4102444800  # 2100-01-01
    for n in range(4):
        assert engine.join(f"t{n}", 1, 10, far, "10.0.0.1", holder="10.0.0.1").state in ("waiting", "admitted")
    engine.configure(max_places_per_client=4)  # counted while there was no cap
    assert engine.join("t4", 1, 10, far, "10.0.0.1", holder="10.0.0.1").state == "too_many_places"
    assert engine.join("x", 1, 10, far, "10.0.0.1", holder="").state == "waiting"  # exempt
    advance(engine, 6)  # the waiters' (poll-less) presence lapses
    engine.reap()
    assert engine.inspect().holders == [("10.0.0.1", 1)]  # only the admitted one still holds a place
    assert engine.join("t5", 1, 10, far, "10.0.0.1", holder="10.0.0.1").state == "waiting"
    engine.leave("t0")
    engine.leave("t5")
    assert engine.inspect().holders == []


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation of two lists without ties."""
    def ranks(values: list[float]) -> list[int]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0] * len(values)
        for rank, n in enumerate(order):
            out[n] = rank
        return out

    rx, ry, n = ranks(xs), ranks(ys), len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True)) / (n * (n * n - 1))


def first_place(base: str, token: str, seen: dict[str, float]) -> None:
    """Follow a pre-queued waiter's stream until it hears a place; note when."""
    for event in sse(f"{base}/api/v1/queue/{token}", timeout=60):
        if event.event == "position" and event.json()["position"] is not None:
            seen[token] = time.time()
            return


def test_a_release_over_two_hosts_places_every_pre_queued_waiter_once_in_random_order(app, gunicorn, make_file):
    """500 waiters pre-queued over two hosts for a release 10 s ahead; one host is killed at the
    release; the other places them all, ahead of later joiners, in an order unrelated to arrival."""
    file_id, _ = make_file("release.bin", size=4096)
    other_id, _ = make_file("other.bin", size=4096)
    hosts = [gunicorn(**HOSTS, MAX_PLACES_PER_CLIENT=0, ADMIT_TIMEOUT=600) for _ in range(2)]
    urls = [h.url for h in hosts]
    holder = new_token(urls[0], other_id)
    assert join(urls[0], holder, "10.0.0.1").json()["state"] == "ready"  # holds the one slot throughout
    before = new_token(urls[1], other_id)
    assert join(urls[1], before, "10.0.0.2").json()["position"] == 1
    def schedule(release_at: float) -> None:
        stamp = datetime.fromtimestamp(release_at, UTC).isoformat()
        answer = requests.patch(f"{urls[1]}/api/v1/admin/files/{file_id}", json={"release_at": stamp},
                                headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert answer.status_code == 200, answer.text

    schedule(time.time() + 600)  # far enough for 500 joins on a busy machine; brought near below
    tokens = [new_token(urls[n % 2], file_id) for n in range(500)]
    for n, token in enumerate(tokens):  # arrival order = index
        body = join(urls[n % 2], token, f"10.1.{n // 250}.{n % 250}").json()
        assert body["state"] == "waiting" and body["position"] is None and body["release_at"]
    summary = requests.get(f"{urls[1]}/api/v1/queue", timeout=10).json()
    assert summary["prequeued"] == 500 and summary["releases"][0]["file_id"] == file_id
    listeners = tokens[1:40:2]  # 20 of host B's waiters also follow their stream
    heard: dict[str, float] = {}
    threads = [threading.Thread(target=first_place, args=(urls[1], t, heard), daemon=True) for t in listeners]
    for thread in threads:
        thread.start()
    release_at = time.time() + 3
    schedule(release_at)
    time.sleep(max(0.0, release_at - time.time() - 0.5))
    os.killpg(hosts[0].proc.pid, signal.SIGKILL)  # host A dies as the release comes
    time.sleep(max(0.0, release_at - time.time() + 0.1))
    later = [new_token(urls[1], file_id) for _ in range(5)]
    for n, token in enumerate(later):
        join(urls[1], token, f"10.2.0.{n}")

    def placed() -> dict[str, int] | None:
        views = {t: requests.get(f"{urls[1]}/api/v1/queue/{t}/status", timeout=10).json() for t in tokens + later}
        positions = {t: v["position"] for t, v in views.items()}
        return positions if all(p is not None for p in positions.values()) else None

    positions = wait_until(placed, timeout=30, interval=0.5, message="every pre-queued waiter placed")
    assert sorted(positions[t] for t in tokens) == list(range(2, 502))  # each once, behind "before"
    assert sorted(positions[t] for t in later) == list(range(502, 507))  # behind all of them
    rho = spearman(list(range(500)), [positions[t] for t in tokens])
    assert abs(rho) < 0.2, rho  # 4.5 standard deviations of a uniform shuffle's rho (1/sqrt(499))
    for thread in threads:
        thread.join(10)
    assert set(heard) == set(listeners) and max(heard.values()) - release_at < 5  # heard within seconds

    first = min(tokens, key=positions.__getitem__)
    for token in (holder, before):  # free the slot twice: the first drawn place is admitted
        requests.delete(f"{urls[1]}/api/v1/queue/{token}", timeout=10)
    assert requests.get(f"{urls[1]}/api/v1/queue/{first}/status", timeout=10).json()["state"] == "ready"

    def drawn() -> int | None:
        with app.app_context():
            return db.session.execute(sa.text("SELECT place_drawn FROM downloads WHERE token_id = :t"),
                                      {"t": token_id(first)}).scalar()

    assert wait_until(drawn, message="the place drawn in history") == 1
