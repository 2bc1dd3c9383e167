"""A host-wide bandwidth limit shared fairly among the host's running downloads.

Each running download renews its membership in a per-host Redis set about once a second
and paces itself to ``limit / members``; a download whose process died drops out after
a few seconds. Only used when ``BANDWIDTH_LIMIT`` is set.
"""
from __future__ import annotations

import contextlib
import socket
import time

from redis import Redis
from redis.exceptions import RedisError

MEMBERSHIP_TTL = 3.0


class HostShare:
    """This connection's fair share of the host's bandwidth limit, in bytes per second."""

    def __init__(self, client: Redis, prefix: str, limit: int, member: str) -> None:
        self.client = client
        self.key = f"{prefix}:bandwidth:{socket.gethostname()}"
        self.limit = limit
        self.member = member
        self.rate = float(limit)

    def refresh(self) -> float:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(self.key, {self.member: now + MEMBERSHIP_TTL})
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.zcard(self.key)
            pipe.expire(self.key, int(MEMBERSHIP_TTL) + 1)
            members = pipe.execute()[2]
            self.rate = self.limit / max(1, int(members))
        except RedisError:
            pass
        return self.rate

    def leave(self) -> None:
        with contextlib.suppress(RedisError):
            self.client.zrem(self.key, self.member)
