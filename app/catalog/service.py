"""Registering, finding, verifying and removing catalog files; the only code that maps ids to
where their bytes are."""
from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from ..errors import AppError, UnknownFile
from ..extensions import db
from ..storage.digests import sha256_of
from ..storage.errors import StoreError, StoreUnavailable
from ..storage.files import Files
from ..storage.objects import ObjectInfo, Progress
from ..storage.sources import SourceFailed
from .models import File

MAX_FILE_ID = 2**31 - 1  # the column is a PostgreSQL integer


class CatalogError(AppError):
    code = "catalog_error"
    status = 400


def _no_progress(_count: int) -> None:
    """No progress bar."""


def _register(info: ObjectInfo, sha256: str, name: str | None, public: bool) -> File:
    if db.session.scalar(db.select(File).filter_by(path=info.location)) is not None:
        raise CatalogError(f"{info.location} is already registered.")
    base = PurePosixPath(info.location).name
    record = File(
        name=name or base,
        path=info.location,
        size=info.size,
        content_type=mimetypes.guess_type(base)[0] or "application/octet-stream",
        sha256=sha256,
        public=public,
        etag=info.etag,
        modified_at=info.modified,
    )
    db.session.add(record)
    db.session.commit()
    return record


def add_file(files: Files, location: str, name: str | None = None, public: bool = False,
             progress: Progress = _no_progress, on_read: Progress = _no_progress) -> File:
    """Register what the store already holds, in place (large files are never copied). The
    SHA-256 is read once from the bytes (``on_read`` hears the length first) unless the object
    carries it."""
    store = files.store
    info = store.describe(store.location(location))
    if db.session.scalar(db.select(File).filter_by(path=info.location)) is not None:
        raise CatalogError(f"{info.location} is already registered.")
    sha256 = info.sha256
    if sha256 is None:
        on_read(info.size)
        sha256 = sha256_of(store.open(info.location, 0, info.size, info.etag), info.size, progress)
    return _register(info, sha256, name, public)


def upload_file(files: Files, path: str, name: str | None = None, public: bool = False,
                progress: Progress = _no_progress) -> File:
    """Put a local file into the store (under its own name, or ``name``) and register it."""
    target = PurePosixPath(path).name
    info = files.store.upload(path, target, progress)
    assert info.sha256 is not None  # every store's upload computes it
    return _register(info, info.sha256, name, public)


@dataclass(frozen=True)
class Verdict:
    record: File
    ok: bool
    detail: str


def verify_file(files: Files, record: File, progress: Progress = _no_progress) -> Verdict:
    """Re-read the file from its store and compare: a mismatch (or a missing object) withdraws
    it from serving; a match serves it again (and adopts the store's new ETag: same bytes)."""
    store = files.store
    try:
        info = store.describe(record.path)
        if info.size != record.size:
            raise StoreError(f"size {info.size}, registered {record.size}")
        found = sha256_of(store.open(record.path, 0, record.size, info.etag), record.size, progress)
    except StoreUnavailable:
        raise  # the store is away: nothing learnt about the file
    except SourceFailed as exc:
        raise StoreUnavailable(f"The file store stopped short: {exc}.") from exc
    except AppError as exc:
        return _withdraw(record, f"unreadable: {exc.message}")
    if found != record.sha256:
        return _withdraw(record, f"sha256 mismatch: registered {record.sha256}, stored {found}")
    record.withdrawn = None
    record.etag = info.etag
    db.session.commit()
    return Verdict(record, True, "ok")


def _withdraw(record: File, why: str) -> Verdict:
    record.withdrawn = why
    db.session.commit()
    return Verdict(record, False, why)


def get_file(file_id: int) -> File:
    record = db.session.get(File, file_id) if 0 < file_id <= MAX_FILE_ID else None
    if record is None:
        raise UnknownFile(f"No file with id {file_id}.")
    return record


def file_name(file_id: int) -> str:
    return get_file(file_id).name


def list_files(public_only: bool = False) -> list[File]:
    query = db.select(File).order_by(File.id)
    if public_only:
        query = query.filter_by(public=True)
    return list(db.session.scalars(query))


def set_release(file_id: int, when: datetime | None) -> File:
    """Schedule the file's release (None: released, first come first served)."""
    if when is not None and when.tzinfo is None:
        raise CatalogError("release_at needs a time zone, e.g. 2026-12-24T10:00:00Z.")
    record = get_file(file_id)
    record.release_at = when
    db.session.commit()
    return record


def remove_file(file_id: int) -> File:
    record = get_file(file_id)
    db.session.delete(record)
    db.session.commit()
    return record
