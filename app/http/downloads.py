"""``GET``/``HEAD /api/v1/downloads/<token>``: the file, with resume, for an admitted token."""
from __future__ import annotations

import unicodedata
from email.utils import format_datetime
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, request, url_for

from ..services import downloading
from ..services.downloading import Download
from .access import SENT_KEY

bp = Blueprint("downloads", __name__)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = "".join(c for c in ascii_name if c.isprintable() and c not in '"\\/') or "download"
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def headers_for(download: Download) -> dict[str, str]:
    sel = download.selection
    headers = {
        "Content-Type": download.record.content_type,
        "Content-Length": str(sel.length),
        "Content-Disposition": content_disposition(download.record.name),
        "ETag": download.etag,
        "Last-Modified": format_datetime(download.last_modified, usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store",
    }
    if sel.partial:
        headers["Content-Range"] = sel.content_range(download.size)
    return headers


def serve(app: Flask, token: str) -> Response:
    download = downloading.describe(app, token, request.range, request.headers.get("If-Range"))
    headers = headers_for(download)
    # a client whose copy is current hears so without spending the token or touching the queue
    if downloading.not_modified(download, request.headers, request.method):
        return Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified", "Cache-Control")})
    status = 206 if download.selection.partial else 200
    if request.method == "HEAD":
        downloading.check_turn(app, download)
        return Response(status=status, headers=headers)
    opened = downloading.begin(app, download)
    if app.config["X_ACCEL_REDIRECT"]:
        # nginx serves the bytes, and the Range, from its internal location
        for name in ("Content-Length", "Content-Range"):
            headers.pop(name, None)
        headers["X-Accel-Redirect"] = downloading.hand_off(app, download, opened)
        return Response(status=200, headers=headers)
    body = downloading.transfer(app, download, opened, request.environ.get("gunicorn.socket"))
    request.environ[SENT_KEY] = body.acked  # the request's log line counts what the client got
    return Response(body, status=status, headers=headers, direct_passthrough=True)


@bp.route("/api/v1/downloads/<token>", methods=["GET", "HEAD"])
@bp.route("/api/v1/downloads/<token>/<filename>", methods=["GET", "HEAD"])
def download(token: str, filename: str | None = None) -> Response:
    """The name in the URL is for tools that save under the URL's last segment (wget, curl -O)."""
    return serve(current_app._get_current_object(), token)  # type: ignore[attr-defined]


def download_url(token: str, name: str) -> str:
    """The download URL ending in the file's name (no slashes in it)."""
    return url_for("downloads.download", token=token, filename=name.replace("/", "_") or "download")
