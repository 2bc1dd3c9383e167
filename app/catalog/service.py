"""Registering, finding and removing catalog files; the only code that maps ids to paths."""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from ..errors import AppError, UnknownFile
from ..extensions import db
from .models import File


class CatalogError(AppError):
    code = "catalog_error"
    status = 400


def resolve_inside(root: str | Path, path: str | Path) -> Path:
    """Resolve ``path`` (relative to ``root`` or absolute) and refuse anything outside ``root``."""
    root = Path(root).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise CatalogError(f"{path} is outside FILES_ROOT ({root}).")
    return resolved


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def add_file(root: str, path: str, name: str | None = None, public: bool = False) -> File:
    """Register a file in place under ``root``; large files are never copied."""
    resolved = resolve_inside(root, path)
    if not resolved.is_file():
        raise CatalogError(f"{path}: no such file.")
    relative = str(resolved.relative_to(Path(root).resolve()))
    if db.session.scalar(db.select(File).filter_by(path=relative)) is not None:
        raise CatalogError(f"{relative} is already registered.")
    content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    record = File(
        name=name or resolved.name,
        path=relative,
        size=resolved.stat().st_size,
        content_type=content_type,
        sha256=sha256_of(resolved),
        public=public,
    )
    db.session.add(record)
    db.session.commit()
    return record


MAX_FILE_ID = 2**31 - 1  # the column is a PostgreSQL integer


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


def remove_file(file_id: int) -> File:
    record = get_file(file_id)
    db.session.delete(record)
    db.session.commit()
    return record


def file_path(root: str, record: File) -> Path:
    """Absolute path of a catalog file, re-checked against ``root`` at every use."""
    return resolve_inside(root, record.path)
