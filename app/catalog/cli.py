"""``flask files ...``: manage the catalog from the command line."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import AppError
from . import service

files_cli = AppGroup("files", help="Manage the file catalog.")


@files_cli.command("add")
@click.argument("path")
@click.option("--name", help="Display name (default: the file name).")
@click.option("--public", is_flag=True, help="Anyone may request a token for it.")
def add_command(path: str, name: str | None, public: bool) -> None:
    """Register PATH (inside FILES_ROOT) in place; prints the new id on the last line."""
    try:
        record = service.add_file(current_app.config["FILES_ROOT"], path, name, public)
    except AppError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"registered {record.path} ({record.size} bytes, sha256 {record.sha256})")
    click.echo(record.id)


@files_cli.command("list")
def list_command() -> None:
    """List every catalog file: id, visibility, size, sha256, name, path (tab-separated)."""
    for record in service.list_files():
        visibility = "public" if record.public else "private"
        click.echo(f"{record.id}\t{visibility}\t{record.size}\t{record.sha256}\t{record.name}\t{record.path}")


@files_cli.command("remove")
@click.argument("file_id", type=int)
def remove_command(file_id: int) -> None:
    """Remove a file from the catalog (the file on disk is left alone)."""
    try:
        record = service.remove_file(file_id)
    except AppError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"removed {record.id} ({record.path})")
