"""What a store knows of one object, and the interface every store offers."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .sources import Source

Progress = Callable[[int], None]  # hears bytes as they are read or written (a progress bar)


@dataclass(frozen=True)
class ObjectInfo:
    location: str  # as the catalog keeps it: a path under FILES_ROOT, or s3://bucket/key
    size: int
    modified: datetime
    etag: str | None = None  # the store's validator; a read names it, so other bytes are refused
    sha256: str | None = None  # the file's digest where the store keeps it (an object's metadata)


class Store(Protocol):
    kind: str

    def location(self, given: str) -> str:
        """The canonical location of what an operator named; refuses what this store cannot hold."""

    def describe(self, location: str) -> ObjectInfo: ...

    def open(self, location: str, start: int, end: int, etag: str | None) -> Source:
        """``[start, end)`` of the object, refused if it is no longer ``etag``."""

    def upload(self, path: str, name: str, progress: Progress) -> ObjectInfo:
        """Store a local file under ``name``; the result carries its SHA-256."""

    def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers."""
