"""Checksums as ``sha256sum -c`` reads them: one public file's, and every public file's."""
from __future__ import annotations

from flask import Blueprint, Response

from ..catalog.service import get_file, list_files
from ..errors import UnknownFile
from ..storage.digests import checksum_line

bp = Blueprint("checksums", __name__)

TEXT = "text/plain; charset=utf-8"


@bp.get("/files/<int:file_id>.sha256")
def file_checksum(file_id: int) -> Response:
    record = get_file(file_id)
    if not record.public:
        raise UnknownFile(f"No file with id {file_id}.")
    return Response(checksum_line(record.sha256, record.name), mimetype=TEXT,
                    headers={"Cache-Control": "max-age=60"})


@bp.get("/SHA256SUMS")
def all_checksums() -> Response:
    body = "".join(checksum_line(record.sha256, record.name) for record in list_files(public_only=True))
    return Response(body, mimetype=TEXT, headers={"Cache-Control": "max-age=60"})
