"""Thousands of connected waiters on one worker keep their places for longer than the grace.

A slow group: one server for the module, one crowd of 6,000 streams held by a gevent client
process, idle for four times the (shortened) wait grace."""
from __future__ import annotations

import multiprocessing
import time

import pytest
import redis

from app.queue.constants import STATUS_CHUNK
from app.queue.engine import QueueEngine
from app.queue.settings import QueueSettings
from app.services.tokens import issue_token, verify_token
from testbed.crowd import hold_streams

from .helpers.env import SECRET

WAITERS = 6_000
GRACE = 3


def test_six_thousand_connected_waiters_on_one_worker_lose_no_place(gunicorn, make_file, settings):
    file_id, _ = make_file()
    # the crowd is one address: no cap on places per client
    server = gunicorn(workers=1, QUEUE_CAPACITY=1, WAIT_GRACE=GRACE, ADMIT_TIMEOUT=3600, MAX_PLACES_PER_CLIENT=0)
    tokens = [issue_token(SECRET, file_id, 3600)[0] for _ in range(WAITERS + 1)]
    client = redis.Redis.from_url(str(settings["REDIS_URL"]))
    engine = QueueEngine(client, str(settings["QUEUE_NAME"]),
                         QueueSettings(capacity=1, wait_grace=GRACE, admit_timeout=3600))
    holder = verify_token(SECRET, tokens[0]).token_id
    assert engine.join(holder, file_id, 1024, time.time() + 3600).state == "admitted"
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    crowd = ctx.Process(target=hold_streams, args=(server.port, tokens[1:], writer))
    crowd.start()
    try:
        assert reader.poll(300), "the crowd did not connect"
        kind, held, failed = reader.recv()
        assert (kind, held, failed) == ("connected", WAITERS, 0)
        time.sleep(4 * GRACE)
        assert not reader.poll(0), reader.recv()  # no stream erred or ended
        ids = [verify_token(SECRET, t).token_id for t in tokens[1:]]
        states = {}
        for start in range(0, len(ids), STATUS_CHUNK):
            states.update(engine.status(ids[start:start + STATUS_CHUNK]).tokens)
        assert {v.state for v in states.values()} == {"waiting"}
        assert sorted(v.position for v in states.values()) == list(range(1, WAITERS + 1))
        head = next(tid for tid, v in states.items() if v.position == 1)
        engine.leave(holder)  # the head is told at once
        assert reader.poll(10)
        kind, token, _ = reader.recv()
        assert (kind, verify_token(SECRET, token).token_id) == ("ready", head)
    finally:
        crowd.kill()
        client.close()


@pytest.fixture(autouse=True)
def _fast_enough():
    """Bound the module in time: it must not hang CI."""
    began = time.monotonic()
    yield
    assert time.monotonic() - began < 600
