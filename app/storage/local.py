"""Files on this host's disk under ``FILES_ROOT`` (the default store; one host only)."""
from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from .errors import ObjectChanged, StoreError, StoreUnavailable
from .objects import ObjectInfo, Progress
from .sources import FileSource

COPY_BLOCK = 1 << 20


class LocalStore:
    kind = "local"

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()

    def path(self, location: str) -> Path:
        """The absolute path of ``location`` (relative to the root, or absolute), never outside it."""
        candidate = Path(location)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise StoreError(f"{location} is outside FILES_ROOT ({self.root}).")
        return resolved

    def location(self, given: str) -> str:
        if given.startswith("s3://"):
            raise StoreError(f"{given} is in object storage, but FILES_URL names local files; set FILES_URL=s3://...")
        return str(self.path(given).relative_to(self.root))

    def describe(self, location: str) -> ObjectInfo:
        path = self.path(location)
        if not path.is_file():
            raise StoreError(f"{location}: no such file.")
        stat = path.stat()
        return ObjectInfo(location, stat.st_size, datetime.fromtimestamp(int(stat.st_mtime), tz=UTC))

    def open(self, location: str, start: int, end: int, etag: str | None = None) -> FileSource:
        path = self.path(location)
        try:
            return FileSource(str(path), start, end)
        except FileNotFoundError as exc:
            raise ObjectChanged("The file is missing from FILES_ROOT.") from exc
        except OSError as exc:
            raise StoreUnavailable(f"The file cannot be read: {exc.strerror}.") from exc

    def size_of(self, location: str) -> int | None:
        try:
            return self.path(location).stat().st_size
        except OSError:
            return None

    def upload(self, path: str, name: str, progress: Progress) -> ObjectInfo:
        """Copy ``path`` into the root as ``name`` (hashing it on the way); never overwrites."""
        target = self.path(name)
        if target.exists():
            raise StoreError(f"{self.location(name)} already exists under FILES_ROOT; register it with files add.")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        partial = target.with_name(f".{target.name}.part")
        try:
            with open(path, "rb") as src, open(partial, "wb") as dst:
                while block := src.read(COPY_BLOCK):
                    digest.update(block)
                    dst.write(block)
                    progress(len(block))
                dst.flush()
                os.fsync(dst.fileno())
            os.link(partial, target)  # fails rather than replace a file that appeared meanwhile
        except FileExistsError as exc:
            raise StoreError(f"{self.location(name)} appeared under FILES_ROOT during the copy.") from exc
        finally:
            partial.unlink(missing_ok=True)
        shutil.copystat(path, target)
        info = self.describe(self.location(name))
        return ObjectInfo(info.location, info.size, info.modified, sha256=digest.hexdigest())

    def check(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailable(f"FILES_ROOT ({self.root}) is not a directory.")
