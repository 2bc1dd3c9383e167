"""The whole Redis key layout of one queue, built in one place.

Every key of a queue shares the hash tag ``{dq:<queue>}`` so that all of them live in one
Redis Cluster slot and one Lua script may touch them together:

=====================  ======  =====================================================
key                    type    contents
=====================  ======  =====================================================
``{dq:Q}:waiting``     ZSET    token id -> join number (the FIFO order)
``{dq:Q}:presence``    ZSET    waiting token id -> deadline to be seen again (ms)
``{dq:Q}:active``      ZSET    admitted token id -> lease deadline (ms, Redis time)
``{dq:Q}:info``        HASH    token id -> JSON state (waiting, admitted, downloading, paused)
``{dq:Q}:spent``       ZSET    spent token id -> token expiry (ms); pruned when expired
``{dq:Q}:counters``    HASH    ``seq`` (join numbers), ``version`` (published events)
``{dq:Q}:admits``      LIST    Redis time of the latest admissions (for the ETA)
``{dq:Q}:journal``     STREAM  admitted / started / finished events for the history table
``{dq:Q}:events``      —       pub/sub channel: one message per state change
=====================  ======  =====================================================
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueKeys:
    queue: str

    @property
    def prefix(self) -> str:
        return f"{{dq:{self.queue}}}"

    @property
    def script_keys(self) -> list[str]:
        """The KEYS every queue script receives, in the order lib.lua names them."""
        return [
            f"{self.prefix}:{name}"
            for name in ("waiting", "presence", "active", "info", "spent", "counters", "admits", "journal")
        ]

    @property
    def journal(self) -> str:
        return f"{self.prefix}:journal"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events"
