"""Loads the queue's Lua scripts once per Redis client (``register_script`` reloads on NOSCRIPT).

Each script is lib.lua, then the script, after one line that names the publish command: plain
``PUBLISH`` on one server, ``SPUBLISH`` on a cluster (a plain one is broadcast to every node;
a sharded one stays on the queue's shard, and its channel shares the queue's hash tag).
"""
from __future__ import annotations

from functools import cache
from importlib import resources

from redis import Redis, RedisCluster
from redis.commands.core import Script

NAMES = ("join", "unbind", "status", "leave", "reap", "start", "progress", "summary", "configure",
         "remove", "inspect")


@cache
def source(name: str, sharded: bool = False) -> str:
    """The script's text: the publish command, the shared lib.lua, the script itself."""
    folder = resources.files(__package__) / "lua"
    publish = f"local PUBLISH = '{'SPUBLISH' if sharded else 'PUBLISH'}'\n"
    return publish + (folder / "lib.lua").read_text() + "\n" + (folder / f"{name}.lua").read_text()


class QueueScripts:
    """One registered ``Script`` per queue operation, bound to one client."""

    def __init__(self, client: Redis | RedisCluster, sharded: bool = False) -> None:
        self.join: Script = client.register_script(source("join", sharded))
        self.unbind: Script = client.register_script(source("unbind", sharded))
        self.status: Script = client.register_script(source("status", sharded))
        self.leave: Script = client.register_script(source("leave", sharded))
        self.reap: Script = client.register_script(source("reap", sharded))
        self.start: Script = client.register_script(source("start", sharded))
        self.progress: Script = client.register_script(source("progress", sharded))
        self.summary: Script = client.register_script(source("summary", sharded))
        self.configure: Script = client.register_script(source("configure", sharded))
        self.remove: Script = client.register_script(source("remove", sharded))
        self.inspect: Script = client.register_script(source("inspect", sharded))
