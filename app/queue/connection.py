"""The Redis client of one process, for whichever deployment ``REDIS_URL`` names.

================================================================  =============================
``redis://host:port/db``, ``rediss://...`` (TLS)                   one server
``redis+sentinel://[user:pass@]host:port[,host:port]/service``     the primary Sentinel names now
``redis+cluster://[user:pass@]host:port[,host:port]``              Redis Cluster
``rediss+sentinel://...``, ``rediss+cluster://...``                the same over TLS, to every
                                                                  Sentinel and node
================================================================  =============================

Every pool blocks when it is full instead of raising ``Too many connections``: with
thousands of waiters joining at once under gevent, a burst of greenlets waits its turn.
A Sentinel client asks the Sentinels for the primary whenever it connects, so it follows a
failover and never writes into a former primary that comes back. A cluster client follows
``MOVED`` on its own; the queue's keys share one hash tag, so every script runs on one node.
"""
from __future__ import annotations

from redis import BlockingConnectionPool, Redis, RedisCluster
from redis.client import PubSub
from redis.cluster import ClusterNode
from redis.sentinel import Sentinel, SentinelConnectionPool

from .redis_url import parse_redis_url

SENTINEL_TIMEOUT = 2.0  # seconds to wait for one Sentinel before asking the next


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections to the current primary) with the blocking pool's limit."""


def connect(url: str, max_connections: int = 64, wait: float = 10.0, **options: object) -> Redis | RedisCluster:
    """``options``: the config's ``REDIS_OPTIONS`` (TLS verification for ``rediss://``)."""
    target = parse_redis_url(url)
    common: dict[str, object] = {
        "max_connections": max_connections, "timeout": wait, "socket_keepalive": True,
        "socket_connect_timeout": 5, **options,
    }
    auth = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        tls = {"ssl": True, **options} if target.tls else {}  # to the Sentinels and to the primary
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs={**auth, **tls, "socket_timeout": SENTINEL_TIMEOUT,
                                                                 "socket_connect_timeout": SENTINEL_TIMEOUT})
        return sentinel.master_for(target.service, connection_pool_class=BlockingSentinelPool,
                                   health_check_interval=30, **auth, **{**common, **tls})
    if target.kind == "cluster":
        (host, port), *others = target.nodes
        scheme = "rediss" if target.tls else "redis"  # each node's pool is made from this URL's scheme
        return RedisCluster(url=f"{scheme}://{host}:{port}", startup_nodes=[ClusterNode(h, p) for h, p in others],
                            connection_pool_class=BlockingConnectionPool, **auth, **common)
    pool = BlockingConnectionPool.from_url(url, health_check_interval=30, **common)
    return Redis(connection_pool=pool)


def is_cluster(client: Redis | RedisCluster) -> bool:
    return isinstance(client, RedisCluster)


def database_of(client: Redis | RedisCluster) -> int:
    """The logical database (a cluster has only 0)."""
    if is_cluster(client):
        return 0
    return int(client.connection_pool.connection_kwargs.get("db") or 0)


def node_for(client: Redis | RedisCluster, key: str) -> Redis:
    """A client of the one server that holds ``key`` now (the primary of its slot)."""
    if is_cluster(client):
        return client.get_redis_connection(client.get_node_from_key(key))
    return client


def refresh(client: Redis | RedisCluster) -> None:
    """Re-learn a cluster's slots (after a resharding or a failover); nothing elsewhere."""
    if is_cluster(client):
        client.nodes_manager.initialize()


def subscribe(client: Redis | RedisCluster, channel: str) -> PubSub:
    """Subscribe to a queue's events: sharded pub/sub on the slot's node in a cluster (the
    scripts ``SPUBLISH`` there), plain pub/sub elsewhere. When the slot moves, the node ends
    the subscription (``sunsubscribe``) and the caller subscribes again."""
    if is_cluster(client):
        pubsub = node_for(client, channel).pubsub()
        pubsub.ssubscribe(channel)
    else:
        pubsub = client.pubsub()
        pubsub.subscribe(channel)
    return pubsub
