"""The Redis client of one process: a blocking pool, so a burst of greenlets waits its turn.

redis-py's default pool raises ``Too many connections`` past its limit; with thousands of
waiters joining at once under gevent, a bounded blocking pool queues them instead.
"""
from __future__ import annotations

from redis import BlockingConnectionPool, Redis


def connect(url: str, max_connections: int = 64, wait: float = 10.0, **options: object) -> Redis:
    """``options``: the config's ``REDIS_OPTIONS`` (TLS verification for ``rediss://``)."""
    pool = BlockingConnectionPool.from_url(
        url,
        **options,
        max_connections=max_connections,
        timeout=wait,
        health_check_interval=30,
        socket_keepalive=True,
        socket_connect_timeout=5,
    )
    return Redis(connection_pool=pool)
