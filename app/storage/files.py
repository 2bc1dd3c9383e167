"""The bytes of catalog files: from the host's cache when it holds them, else from the store.

This is what the services see of storage: ``open`` a range of a registered file and get a
``Source``, or a clear error (store away, object changed, file withdrawn), never other bytes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .cache import DiskCache
from .errors import ObjectChanged, StoreError
from .local import LocalStore
from .objects import Store
from .s3 import S3Store
from .sources import FileSource, Source


class StoredFile(Protocol):
    """What a catalog record tells about where its bytes are."""

    path: str
    size: int
    sha256: str
    etag: str | None
    modified_at: datetime | None


def open_store(config: Mapping[str, Any]) -> Store:
    """The store FILES_URL names (checked at start-up by the config)."""
    url = config["FILES_URL"]
    if url.startswith("s3://"):
        return S3Store(url, config["AWS_REGION"])
    return LocalStore(config["FILES_ROOT"])


@dataclass
class Files:
    store: Store
    cache: DiskCache | None = None  # only in front of a remote store

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Files:
        store = open_store(config)
        cache = None
        if store.kind != "local" and config["FILES_CACHE_BYTES"] > 0:
            cache = DiskCache(config["FILES_CACHE_DIR"], config["FILES_CACHE_BYTES"])
        return cls(store, cache)

    def modified(self, record: StoredFile) -> datetime:
        """Last-Modified: as registered (records older than that column: the file's own)."""
        if record.modified_at is not None:
            return record.modified_at
        try:
            return self.store.describe(record.path).modified
        except StoreError as exc:
            raise ObjectChanged(f"The file is missing from the store: {exc.message}") from exc

    def open(self, record: StoredFile, start: int, end: int) -> Source:
        if isinstance(self.store, LocalStore):
            if self.store.size_of(record.path) != record.size:
                raise ObjectChanged("The file changed on disk since it was registered.")
            return self.store.open(record.path, start, end)
        if self.cache is not None:
            cached = self.cache.lookup(record.sha256, record.size)
            if cached is not None:
                return FileSource(cached, start, end)
            path, size, etag = record.path, record.size, record.etag  # the fill outlives the request
            self.cache.fill_later(record.sha256, size, lambda: self.store.open(path, 0, size, etag))
        return self.store.open(record.path, start, end, record.etag)

    def read_all(self, record: StoredFile) -> Source:
        """The whole file from the store itself (verification never trusts the cache)."""
        return self.store.open(record.path, 0, record.size, record.etag)
