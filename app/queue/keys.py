"""The whole Redis key layout of one queue, built in one place.

Every key of a queue shares the hash tag ``{dq:<queue>}`` so that all of them live in one
Redis Cluster slot and one Lua script may touch them together:

======================  ======  ====================================================
key                     type    contents
======================  ======  ====================================================
``{dq:Q}:waiting``      ZSET    token id -> join number (the FIFO order)
``{dq:Q}:presence``     ZSET    waiting token id held by no live stream -> deadline (ms): present
                                until it, then away until the next (away.lua)
``{dq:Q}:away``         ZSET    away token id -> join number (out of the line until it returns)
``{dq:Q}:active``       ZSET    admitted token id -> lease deadline (ms, Redis time)
``{dq:Q}:info``         HASH    token id -> JSON state (waiting, admitted, downloading, paused)
``{dq:Q}:spent``        ZSET    completed token id -> token expiry (ms); pruned when expired
``{dq:Q}:counters``     HASH    ``seq`` (join numbers), ``version`` (events), ``epoch``
``{dq:Q}:admits``       LIST    Redis time of the latest admissions (for the ETA)
``{dq:Q}:journal``      STREAM  admitted / started / finished events for the history table
``{dq:Q}:settings``     HASH    capacity, queue length, leases, graces, mode: the queue's rules
``{dq:Q}:owners``       ZSET    process id -> last sign of life (ms)
``{dq:Q}:held``         ZSET    ``owner|w|token`` / ``owner|d|token|conn``: what each process holds
``{dq:Q}:expiry``       ZSET    waiting token id -> token expiry (ms)
``{dq:Q}:done``         HASH    completed, removed, lapsed or missed token id -> resumable-until,
                                tail budget, what happened
``{dq:Q}:stats``        HASH    running totals and the last hour per minute (metrics, admin)
``{dq:Q}:places``       ZSET    client (address, /64 or issuer's subject) -> places it holds
``{dq:Q}:releases``     ZSET    file id -> release time (ms): files whose pre-queue awaits placing
``{dq:Q}:prequeue``     HASH    ``<file>:<i>`` pre-queued token ids, ``<file>:n|base|drawn``, ``all``
``{dq:Q}:events:<db>``  —       pub/sub channel: one message per state change
======================  ======  ====================================================

Pub/sub channels are shared by every database of a Redis server, so the channel names the
database too: two deployments on databases 1 and 2 never hear each other.
"""
from __future__ import annotations

from dataclasses import dataclass

# the order every script receives its KEYS in (the generated header names them: constants.LUA_KEY_NAMES)
SCRIPT_KEYS = ("waiting", "presence", "active", "info", "spent", "counters", "admits", "journal",
               "settings", "owners", "held", "expiry", "done", "stats", "places", "releases", "prequeue", "away")


@dataclass(frozen=True)
class QueueKeys:
    queue: str
    db: int = 0

    @property
    def prefix(self) -> str:
        return f"{{dq:{self.queue}}}"

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def script_keys(self) -> list[str]:
        """The KEYS every queue script receives, in ``SCRIPT_KEYS`` order."""
        return [self.key(name) for name in SCRIPT_KEYS]

    @property
    def counters(self) -> str:
        return self.key("counters")

    @property
    def settings(self) -> str:
        return self.key("settings")

    @property
    def waiting(self) -> str:
        return self.key("waiting")

    @property
    def journal(self) -> str:
        return self.key("journal")

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events:{self.db}"
