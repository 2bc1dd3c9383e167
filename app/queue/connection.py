"""The Redis client of one process, for whichever deployment ``REDIS_URL`` names.

================================================================  =============================
``redis://host:port/db``, ``rediss://...`` (TLS)                   one server
``redis+sentinel://[user:pass@]host:port[,host:port]/service``     the primary Sentinel names now
``redis+cluster://[user:pass@]host:port[,host:port]``              Redis Cluster
================================================================  =============================

Every pool blocks when it is full instead of raising ``Too many connections``: with
thousands of waiters joining at once under gevent, a burst of greenlets waits its turn.
A Sentinel client asks the Sentinels for the primary whenever it connects, so it follows a
failover and never writes into a former primary that comes back. A cluster client follows
``MOVED`` on its own; the queue's keys share one hash tag, so every script runs on one node.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from redis import BlockingConnectionPool, Redis, RedisCluster
from redis.client import PubSub
from redis.cluster import ClusterNode
from redis.sentinel import Sentinel, SentinelConnectionPool

SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster")
SENTINEL_TIMEOUT = 2.0  # seconds to wait for one Sentinel before asking the next


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections to the current primary) with the blocking pool's limit."""


@dataclass(frozen=True)
class RedisTarget:
    """What a ``REDIS_URL`` names: a kind of deployment and where to find it."""

    scheme: str
    nodes: tuple[tuple[str, int], ...]
    service: str = ""
    username: str | None = None
    password: str | None = None

    @property
    def kind(self) -> str:
        return {"redis+sentinel": "sentinel", "redis+cluster": "cluster"}.get(self.scheme, "server")


def parse_redis_url(url: str) -> RedisTarget:
    """Read a ``REDIS_URL``; ``ValueError`` says what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}, got {url!r}")
    auth, _, hosts = parts.netloc.rpartition("@")
    username, _, password = auth.partition(":") if ":" in auth else ("", "", auth)
    nodes = []
    for host_port in hosts.split(","):
        host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"bad host:port {host_port!r} in {parts.scheme}:// URL")
        nodes.append((host.strip("[]"), int(port or (26379 if parts.scheme == "redis+sentinel" else 6379))))
    service = parts.path.strip("/")
    if parts.scheme == "redis+sentinel" and (not service or "/" in service):
        raise ValueError("a redis+sentinel:// URL names the service: redis+sentinel://host:port[,host:port]/mymaster")
    if parts.scheme == "redis+cluster" and service not in ("", "0"):
        raise ValueError("a cluster has database 0 only: redis+cluster://host:port[,host:port]")
    if parts.scheme in ("redis", "rediss") and len(nodes) > 1:
        raise ValueError("one server per redis:// URL; several nodes are redis+sentinel:// or redis+cluster://")
    return RedisTarget(parts.scheme, tuple(nodes), service, unquote(username) or None, unquote(password) or None)


def connect(url: str, max_connections: int = 64, wait: float = 10.0, **options: object) -> Redis | RedisCluster:
    """``options``: the config's ``REDIS_OPTIONS`` (TLS verification for ``rediss://``)."""
    target = parse_redis_url(url)
    common: dict[str, object] = {
        "max_connections": max_connections, "timeout": wait, "socket_keepalive": True,
        "socket_connect_timeout": 5, **options,
    }
    auth = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs={**auth, "socket_timeout": SENTINEL_TIMEOUT,
                                                                 "socket_connect_timeout": SENTINEL_TIMEOUT})
        return sentinel.master_for(target.service, connection_pool_class=BlockingSentinelPool,
                                   health_check_interval=30, **auth, **common)
    if target.kind == "cluster":
        (host, port), *others = target.nodes
        return RedisCluster(url=f"redis://{host}:{port}", startup_nodes=[ClusterNode(h, p) for h, p in others],
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
