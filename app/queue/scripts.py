"""Loads the queue's Lua scripts once per Redis client (``register_script`` reloads on NOSCRIPT).

Each script is composed when it is loaded, never per call (Redis runs it by its SHA):

1. one line naming the publish command: plain ``PUBLISH`` on one server, ``SPUBLISH`` on a
   cluster (a plain one is broadcast to every node; a sharded one stays on the queue's shard,
   and its channel shares the queue's hash tag);
2. the generated header (``constants.lua_header``): KEYS, and of the shared numbers and the
   vocabulary the names the script uses;
3. the includes the script names with ``--- @include "name"`` lines (``lua/includes/``, one
   concern each), each once, after the includes it names itself (the BullMQ convention);
4. the script.

The vocabulary is folded in as it loads (``STATE.WAITING`` becomes ``'waiting'``), and the header
keeps only the names the script uses: what is built on every call is no more than before.
"""
from __future__ import annotations

import re
from functools import cache
from importlib import resources

from redis import Redis, RedisCluster
from redis.commands.core import Script

from .constants import fold_vocabulary, lua_header

NAMES = ("join", "unbind", "status", "leave", "reap", "start", "progress", "summary", "configure",
         "remove", "inspect", "release")
INCLUDE = re.compile(r'^--- @include "([a-z_]+)"\s*$', re.MULTILINE)


def _read(path: str) -> str:
    return (resources.files(__package__) / "lua" / path).read_text()


def includes_of(text: str) -> list[str]:
    """The includes a script or an include names, in order."""
    return INCLUDE.findall(text)


def _resolve(text: str, done: list[str], chain: tuple[str, ...] = ()) -> list[str]:
    """The texts of ``text``'s includes, dependencies first, each once (``done``: names so far)."""
    parts = []
    for name in includes_of(text):
        if name in chain:
            raise ValueError(f"include cycle: {' -> '.join((*chain, name))}")
        if name in done:
            continue
        body = _read(f"includes/{name}.lua")
        parts += _resolve(body, done, (*chain, name))
        done.append(name)
        parts.append(body)
    return parts


@cache
def source(name: str, sharded: bool = False) -> str:
    """The script's whole text as Redis receives it."""
    publish = f"local PUBLISH = '{'SPUBLISH' if sharded else 'PUBLISH'}'\n"
    script = _read(f"{name}.lua")
    body = fold_vocabulary("".join(_resolve(script, [])) + script)
    return publish + lua_header(body) + body


class QueueScripts:
    """One registered ``Script`` per queue operation, bound to one client."""

    def __init__(self, client: Redis | RedisCluster, sharded: bool = False) -> None:
        self.by_name: dict[str, Script] = {name: client.register_script(source(name, sharded)) for name in NAMES}

    def __getitem__(self, name: str) -> Script:
        return self.by_name[name]
