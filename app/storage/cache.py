"""A host's disk as a cache of a remote store's objects, shared by its workers.

Entries are named by the file's SHA-256 and appear only by an atomic rename after every byte
was written, synced and checked against that digest: a partial, unchecked or stale entry is
never found (a killed fill leaves only its ``.part``, which the next fill overwrites). Workers
agree through the file system: a fill holds an exclusive ``flock`` on the entry's ``.lock``
(the kernel drops it if the worker dies), so a host fills each object once at a time.
Least-recently-used entries are evicted to make room (use touches an entry's mtime).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import gevent
from gevent.threadpool import ThreadPool

from ..cooperative import yield_now
from .sources import Source

log = logging.getLogger(__name__)

BLOCK = 1 << 20
TOUCH_EVERY = 60.0  # seconds between mtime updates of an entry in use
PART, LOCK = ".part", ".lock"
Fill = Literal["filled", "present", "busy", "mismatch"]


class DiskCache:
    def __init__(self, root: str, capacity: int) -> None:
        self.root = Path(root)
        self.capacity = capacity
        self.root.mkdir(parents=True, exist_ok=True)
        self._filling: set[str] = set()
        self._disk = ThreadPool(1)  # writes and fsync may block on the disk: never on the event loop

    def entry(self, sha256: str) -> Path:
        return self.root / sha256

    def lookup(self, sha256: str, size: int) -> str | None:
        """The path of a complete, checked copy, or None."""
        path = self.entry(sha256)
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size != size:
            return None
        if time.time() - stat.st_mtime > TOUCH_EVERY:
            with contextlib.suppress(OSError):
                os.utime(path)
        return str(path)

    def fits(self, size: int) -> bool:
        return 0 < size <= self.capacity

    def fill_later(self, sha256: str, size: int, open_source: Callable[[], Source]) -> None:
        """Fill in the background unless this process already is (another worker's fill holds
        the lock, and this one then gives way at once)."""
        if sha256 in self._filling or not self.fits(size):
            return
        self._filling.add(sha256)
        gevent.spawn(self._fill_logged, sha256, size, open_source)

    def _fill_logged(self, sha256: str, size: int, open_source: Callable[[], Source]) -> None:
        try:
            self.fill(sha256, size, open_source)
        except Exception:  # a failed fill costs a later download its speed, not its bytes
            log.exception("filling the cache with %s failed", sha256)
        finally:
            self._filling.discard(sha256)

    def fill(self, sha256: str, size: int, open_source: Callable[[], Source]) -> Fill:
        """Copy the object into the cache: ``filled``; or it was there (``present``), another worker
        is filling it (``busy``), or its bytes are not the file's (``mismatch``, nothing kept)."""
        with open(self.root / (sha256 + LOCK), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "busy"  # another worker of this host is filling it
            if self.lookup(sha256, size) is not None:
                return "present"
            self._make_room(size)
            part = self.root / (sha256 + PART)
            try:
                if not self._copy(open_source(), size, part, sha256):
                    return "mismatch"
                os.rename(part, self.entry(sha256))
            finally:
                part.unlink(missing_ok=True)
            log.info("cached %s (%d bytes)", sha256, size)
            return "filled"

    def _copy(self, source: Source, size: int, part: Path, sha256: str) -> bool:
        digest = hashlib.sha256()
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            remaining = size
            while remaining > 0:
                block = source.read(min(BLOCK, remaining))
                digest.update(block)
                self._disk.apply(_write_all, (fd, block))
                remaining -= len(block)
                yield_now()
            self._disk.apply(os.fsync, (fd,))
        finally:
            os.close(fd)
            source.close()
        if digest.hexdigest() != sha256:
            log.error("not cached: the stored object's SHA-256 is %s, the catalog's %s", digest.hexdigest(), sha256)
            return False
        return True

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.root.iterdir():
            if path.name.endswith(LOCK):
                continue
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)

    def _make_room(self, size: int) -> None:
        """Evict the least recently used entries until ``size`` more bytes fit."""
        entries = self._entries()
        used = sum(entry[1] for entry in entries)
        for _, entry_size, path in entries:
            if used + size <= self.capacity:
                return
            if path.name.endswith(PART) and self._locked(path.name.removesuffix(PART)):
                continue  # another worker's fill in progress
            with contextlib.suppress(OSError):
                path.unlink()
                used -= entry_size
                log.info("evicted %s from the cache", path.name)

    def _locked(self, sha256: str) -> bool:
        try:
            with open(self.root / (sha256 + LOCK), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def used(self) -> int:
        return sum(entry[1] for entry in self._entries())


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view):]
