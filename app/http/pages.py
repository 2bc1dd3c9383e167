"""The browser pages: the list of public files and one file's download page."""
from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template

from ..catalog.service import get_file, list_files
from ..errors import UnknownFile

bp = Blueprint("pages", __name__)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


@bp.app_template_filter("human_size")
def human_size_filter(size: int) -> str:
    return human_size(size)


@cache
def asset_version(folder: str, filename: str) -> str:
    """A short hash of a static file: its URL changes with its content, so it may be cached for good."""
    try:
        return hashlib.sha256((Path(folder) / filename).read_bytes()).hexdigest()[:12]
    except OSError:
        return "0"


@bp.app_url_defaults
def version_static(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint == "static" and "filename" in values and current_app.static_folder:
        values.setdefault("v", asset_version(current_app.static_folder, values["filename"]))


@bp.get("/favicon.ico")
def favicon() -> Response:
    return current_app.send_static_file("favicon.svg")


@bp.get("/")
def index() -> str:
    return render_template("index.html", files=list_files(public_only=True))


@bp.get("/files/<int:file_id>")
def file_page(file_id: int) -> str:
    record = get_file(file_id)
    if not record.public:
        raise UnknownFile(f"No file with id {file_id}.")
    return render_template("file.html", file=record, capacity=current_app.config["QUEUE_CAPACITY"])
