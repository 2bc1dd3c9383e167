"""What a ``REDIS_URL`` names, read without importing the Redis client: the gunicorn master checks
the configuration before its gevent workers patch ``ssl``, which redis-py imports."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")


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
        return self.scheme.partition("+")[2] or "server"

    @property
    def tls(self) -> bool:
        """``rediss``: TLS to every server, Sentinel and cluster node alike."""
        return self.scheme.startswith("rediss")


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
        nodes.append((host.strip("[]"), int(port or (26379 if parts.scheme.endswith("sentinel") else 6379))))
    service = parts.path.strip("/")
    kind = parts.scheme.partition("+")[2]
    if kind == "sentinel" and (not service or "/" in service):
        raise ValueError(f"a {parts.scheme}:// URL names the service: {parts.scheme}://host:port[,host:port]/mymaster")
    if kind == "cluster" and service not in ("", "0"):
        raise ValueError(f"a cluster has database 0 only: {parts.scheme}://host:port[,host:port]")
    if parts.scheme in ("redis", "rediss") and len(nodes) > 1:
        raise ValueError("one server per redis:// URL; several nodes are redis+sentinel:// or redis+cluster://")
    return RedisTarget(parts.scheme, tuple(nodes), service, unquote(username) or None, unquote(password) or None)
