"""Loads the queue's Lua scripts once per Redis client (``register_script`` reloads on NOSCRIPT)."""
from __future__ import annotations

from functools import cache
from importlib import resources

from redis import Redis
from redis.commands.core import Script

NAMES = ("join", "unbind", "status", "leave", "reap", "start", "progress", "summary", "configure",
         "remove", "inspect")


@cache
def source(name: str) -> str:
    """The script's text: the shared lib.lua followed by the script itself."""
    folder = resources.files(__package__) / "lua"
    return (folder / "lib.lua").read_text() + "\n" + (folder / f"{name}.lua").read_text()


class QueueScripts:
    """One registered ``Script`` per queue operation, bound to one client."""

    def __init__(self, client: Redis) -> None:
        self.join: Script = client.register_script(source("join"))
        self.unbind: Script = client.register_script(source("unbind"))
        self.status: Script = client.register_script(source("status"))
        self.leave: Script = client.register_script(source("leave"))
        self.reap: Script = client.register_script(source("reap"))
        self.start: Script = client.register_script(source("start"))
        self.progress: Script = client.register_script(source("progress"))
        self.summary: Script = client.register_script(source("summary"))
        self.configure: Script = client.register_script(source("configure"))
        self.remove: Script = client.register_script(source("remove"))
        self.inspect: Script = client.register_script(source("inspect"))
