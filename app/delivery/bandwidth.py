"""A host's bandwidth limit (``BANDWIDTH_LIMIT``) shared max-min fairly by its downloads.

A share belongs to a download (a token), not to a connection: a token with four connections
(``aria2c -x4``) gets one download's share, split among its connections. A download whose client
takes less than its share keeps what it takes, and what it leaves goes to the others (max-min
fairness, "water filling").

No Redis call per chunk: each process keeps its connections' demands in memory (bytes/s sent
over the last interval, or *greedy* when a connection used nearly all it was allowed, so it
might take more). About once a second, one pipelined round trip per process writes them to the
host's hash (one field per process, with a deadline) and reads every process's; the water level
is worked out locally and each connection paces itself to it. A process that stops refreshing
drops out at its deadline.
"""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis, RedisCluster
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

GREEDY = -1.0  # a demand that is not known to be bounded: the connection used what it was allowed
GREEDY_FRACTION = 0.9  # sent at least this part of its allowance: it could have sent more
DEMAND_TTL = 3.0  # seconds a process's demands count without a refresh
SLOWEST_PACE = 16 << 10  # bytes/s: no connection is paced slower than this
REFRESH_INTERVAL = 0.25  # seconds between two refreshes of a process's shares (one round trip)
# seconds a bounded demand is averaged over: a connection to a slow client sends in bursts (the
# kernel takes nothing until the client has read), so one interval alone often says 0 for a
# client taking 1 MiB/s, and the others would be given its share too
DEMAND_WINDOW = 2.0


def water_level(limit: float, demands: list[float]) -> float:
    """The max-min fair share: downloads demanding less keep their demand, the others (and the
    greedy) split what is left equally. ``demands`` are bytes/s or ``GREEDY``."""
    if not demands:
        return limit
    bounded = sorted(d for d in demands if d != GREEDY)
    left, count = float(limit), len(demands)
    for demand in bounded:
        if demand * count > left:
            break
        left -= demand
        count -= 1
    if count:
        return left / count
    return bounded[-1] + left  # everyone is satisfied: any one of them may grow into what is left


class ConnectionShare:
    """One connection's pace: the bytes/s it may send now, read per chunk without Redis."""

    def __init__(self, board: HostBandwidth, token: str, conn: str, rate: float) -> None:
        self.board, self.token, self.conn = board, token, conn
        self.rate = rate
        # the bytes its client acknowledged so far (its transfer's count): a demand is what the
        # client takes, not what the kernel holds for it (a new connection's first writes fill
        # its socket's buffer, which a slow client then reads for seconds)
        self.acked: Callable[[], int] = lambda: 0
        self._counted = 0  # of those, the ones counted in a demand already
        self._since = time.monotonic()
        self._allowed = rate
        self._measured = False  # a new connection's demand is unknown: greedy until measured
        self._last = GREEDY
        self._recent: deque[tuple[float, int]] = deque()  # (interval start, bytes) within DEMAND_WINDOW

    def pace(self, rate: float) -> None:
        """The rate from now on, and the allowance the next demand is measured against."""
        self.rate = self._allowed = rate

    def demand(self, now: float, interval: float) -> float:
        """Bytes/s over the last ``DEMAND_WINDOW`` (``GREEDY`` when the pace held it back, or when
        too short to tell); starts the next interval."""
        elapsed = now - self._since
        if elapsed < interval / 2:
            return GREEDY if not self._measured else self._last
        acked = self.acked()
        self._recent.append((self._since, acked - self._counted))
        while len(self._recent) > 1 and now - self._recent[0][0] > DEMAND_WINDOW:
            self._recent.popleft()
        self._counted, self._since, self._measured = acked, now, True
        rate = sum(sent for _, sent in self._recent) / (now - self._recent[0][0])
        self._last = GREEDY if rate >= GREEDY_FRACTION * self._allowed else rate
        return self._last

    @property
    def held_back(self) -> bool:
        """The pace, not the client, set this connection's speed lately (or it is too new to tell)."""
        return self._last == GREEDY

    def leave(self) -> None:
        self.board.leave(self)


@dataclass
class _Token:
    connections: int = 0
    demand: float = 0.0

    def add(self, connections: int, demand: float) -> None:
        self.connections += connections
        if GREEDY in (self.demand, demand):
            self.demand = GREEDY
        else:
            self.demand += demand


class HostBandwidth:
    """This process's side of the host's shared limit (``limit`` bytes/s for the whole host)."""

    def __init__(self, client: Redis | RedisCluster, prefix: str, limit: int, owner: str,
                 interval: float = REFRESH_INTERVAL) -> None:
        self.client = client
        self.key = f"{prefix}:bandwidth:{socket.gethostname()}"
        self.limit = limit
        self.owner = owner
        self.interval = interval
        self.level = float(limit)  # the last water level worked out for this host
        self._shares: dict[ConnectionShare, None] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def start(self) -> None:
        """The loop that re-paces this process's connections while it has any."""
        threading.Thread(target=self._loop, name="host-bandwidth", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, token: str, conn: str) -> ConnectionShare:
        """A new connection: the host's shares are worked out again at once (one round trip), so
        it starts at its fair pace; the others follow within ``interval``."""
        with self._lock:
            share = ConnectionShare(self, token, conn, self.level)
            self._shares[share] = None
        self.refresh()
        self._wake.set()
        return share

    def leave(self, share: ConnectionShare) -> None:
        with self._lock:
            self._shares.pop(share, None)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:
                log.exception("bandwidth share refresh failed")
            with self._lock:
                if not self._shares:
                    self._wake.clear()
            self._stop.wait(self.interval)

    def refresh(self) -> None:
        """Publish this process's demands, read the host's, and re-pace every local connection."""
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        now = time.monotonic()
        with self._lock:
            shares = list(self._shares)
        mine: dict[str, _Token] = {}
        for share in shares:
            mine.setdefault(share.token, _Token()).add(1, share.demand(now, self.interval))
        wall = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            if mine:
                entry = {"u": wall + DEMAND_TTL, "d": {t: [v.connections, v.demand] for t, v in mine.items()}}
                pipe.hset(self.key, self.owner, json.dumps(entry))
            else:
                pipe.hdel(self.key, self.owner)
            pipe.hgetall(self.key)
            pipe.expire(self.key, int(DEMAND_TTL) * 10)
            host = pipe.execute()[1]
        except RedisError as exc:
            log.warning("bandwidth shares not refreshed (%s); keeping the last ones", exc)
            return
        tokens, stale = self._host_tokens(host, wall)
        if stale:
            with contextlib.suppress(RedisError):
                self.client.hdel(self.key, *stale)
        for token, value in mine.items():
            tokens.setdefault(token, _Token(value.connections, value.demand))  # not yet in the hash
        self.level = water_level(self.limit, [t.demand for t in tokens.values()])
        for share in shares:
            token = tokens[share.token]
            share.pace(max(SLOWEST_PACE, self.level / max(1, token.connections)))

    def _host_tokens(self, host: dict[bytes, bytes], wall: float) -> tuple[dict[str, _Token], list[bytes]]:
        """Every live process's demands, summed per token (its connections on any process here)."""
        tokens: dict[str, _Token] = {}
        stale = []
        for field, raw in host.items():
            try:
                entry = json.loads(raw)
                if entry["u"] < wall:
                    stale.append(field)
                    continue
                for token, (connections, demand) in entry["d"].items():
                    tokens.setdefault(token, _Token()).add(int(connections), float(demand))
            except (ValueError, KeyError, TypeError):
                stale.append(field)
        return tokens, stale
