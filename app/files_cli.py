"""``flask files ...``: manage the catalog from the command line."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from .catalog import service
from .catalog.models import File
from .errors import AppError
from .queue_cli import actor
from .runtime import runtime
from .services import releasing
from .storage.files import Files

files_cli = AppGroup("files", help="Manage the file catalog.")


def _files() -> Files:
    return Files.from_config(current_app.config)


@contextmanager
def _failures() -> Iterator[None]:
    """An error the service raises is the command's one-line reason."""
    try:
        yield
    except AppError as exc:
        raise click.ClickException(exc.message) from exc


class _Bar:
    """A progress bar on stderr, shown once the length of the work is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def start(self, total: int) -> None:
        self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
        self.bar.__enter__()

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def _progress(label: str) -> Iterator[_Bar]:
    bar = _Bar(label)
    try:
        yield bar
    finally:
        bar.finish()


def _release(file_id: int, value: str) -> str:
    """Tell the catalog and the queue; the new release time as ISO 8601 (or "none")."""
    with _failures():
        view = releasing.schedule(runtime(current_app).engine, actor(), file_id,
                                  None if value.strip().lower() == "none" else value)
    return view["release_at"] or "none"


def _check_release(release_at: str | None) -> None:
    """A bad release time stops the command before a long read or upload."""
    if release_at:
        with _failures():
            releasing.parse_release_at(release_at)


def _registered(record: File, release_at: str | None) -> None:
    click.echo(f"registered {record.path} ({record.size} bytes, sha256 {record.sha256})")
    if release_at:
        click.echo(f"release at {_release(record.id, release_at)}: everyone who arrives before it gets a random place")
    click.echo(record.id)


def _options(command: Callable) -> Callable:
    command = click.option("--release-at", metavar="TIME",
                           help="Scheduled release (ISO 8601, e.g. 2026-12-24T10:00:00Z): everyone who "
                                "joins before it is placed in a random order at it.")(command)
    command = click.option("--public", is_flag=True, help="Anyone may request a token for it.")(command)
    return click.option("--name", help="Display name (default: the file name).")(command)


@files_cli.command("add")
@click.argument("location")
@_options
def add_command(location: str, name: str | None, public: bool, release_at: str | None) -> None:
    """Register LOCATION in place: a path inside FILES_ROOT, or s3://bucket/key (or a key under
    FILES_URL) with FILES_URL=s3://...; prints the new id on the last line."""
    _check_release(release_at)
    with _failures(), _progress("reading to compute its SHA-256") as bar:
        record = service.add_file(_files(), location, name, public, progress=bar.update, on_read=bar.start)
    _registered(record, release_at)


@files_cli.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
@_options
def upload_command(path: str, name: str | None, public: bool, release_at: str | None) -> None:
    """Put the local file PATH into the store (under FILES_URL's prefix, or FILES_ROOT) with its
    SHA-256, and register it; prints the new id on the last line."""
    _check_release(release_at)
    with _failures(), _progress("uploading") as bar:
        bar.start(Path(path).stat().st_size)
        record = service.upload_file(_files(), path, name, public, progress=bar.update)
    _registered(record, release_at)


@files_cli.command("verify")
@click.argument("file_id", type=int, required=False)
def verify_command(file_id: int | None) -> None:
    """Re-read every file (or FILE_ID) from its store and compare its SHA-256: a mismatch is
    withdrawn from serving until a later verify finds the right bytes. Exits 1 on a mismatch."""
    files = _files()
    bad = 0
    with _failures():
        records = [service.get_file(file_id)] if file_id is not None else service.list_files()
        for record in records:
            with _progress(f"verifying {record.id}") as bar:
                bar.start(record.size)
                verdict = service.verify_file(files, record, progress=bar.update)
            if verdict.ok:
                click.echo(f"ok\t{record.id}\t{record.name}")
            else:
                bad += 1
                click.echo(f"WITHDRAWN\t{record.id}\t{record.name}\t{verdict.detail}")
    if bad:
        raise click.ClickException(f"{bad} of {len(records)} files do not match their SHA-256; withdrawn from serving.")


@files_cli.command("set")
@click.argument("file_id", type=int)
@click.argument("changes", nargs=-1, required=True, metavar="release_at=TIME|none")
def set_command(file_id: int, changes: tuple[str, ...]) -> None:
    """Change a file: release_at=2026-12-24T10:00:00Z schedules its release (waiters already
    pre-queued follow it), release_at=none releases it now."""
    for change in changes:
        key, sep, value = change.partition("=")
        if key != "release_at" or not sep:
            raise click.BadParameter(f"{change!r}: write release_at=TIME (ISO 8601 with a zone) or release_at=none")
        click.echo(f"{file_id}\trelease_at\t{_release(file_id, value)}")


@files_cli.command("list")
def list_command() -> None:
    """List every catalog file: id, visibility, size, sha256, name, location (tab-separated), and
    why it is withdrawn where it is."""
    for record in service.list_files():
        visibility = "public" if record.public else "private"
        line = f"{record.id}\t{visibility}\t{record.size}\t{record.sha256}\t{record.name}\t{record.path}"
        if record.release_at:
            line += f"\trelease_at: {record.release_at.isoformat()}"
        click.echo(line + (f"\twithdrawn: {record.withdrawn}" if record.withdrawn else ""))


@files_cli.command("remove")
@click.argument("file_id", type=int)
def remove_command(file_id: int) -> None:
    """Remove a file from the catalog (the stored bytes are left alone)."""
    with _failures():
        record = service.remove_file(file_id)
    click.echo(f"removed {record.id} ({record.path})")
