"""``GET``/``HEAD /api/v1/downloads/<token>``: the file, with resume, for an admitted token."""
from __future__ import annotations

import unicodedata
from email.utils import format_datetime
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, url_for

from ..runtime import runtime
from ..services import downloading
from ..services.downloading import Answer, DownloadPlan, Serving
from ..storage.digests import repr_digest
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


def headers_for(plan: DownloadPlan) -> dict[str, str]:
    sel = plan.selection
    headers = {
        "Content-Type": plan.record.content_type,
        "Content-Length": str(sel.length),
        "Content-Disposition": content_disposition(plan.record.name),
        "ETag": plan.etag,
        "Last-Modified": format_datetime(plan.last_modified, usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store",
        "Repr-Digest": repr_digest(plan.record.sha256),  # RFC 9530: the whole file's, on 200 and 206
    }
    if sel.partial:
        headers["Content-Range"] = sel.content_range(plan.size)
    return headers


def serving() -> Serving:
    """A connection's last report may wait for the housekeeping loop: this process's loops run."""
    rt = runtime(current_app).running()
    return Serving(rt.engine, rt.reporter, rt.bandwidth, rt.metrics.sent_bytes.inc, rt.files, current_app.config)


def render(answer: Answer) -> Response:
    headers = headers_for(answer.plan)
    if answer.status == 304:
        return Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified", "Cache-Control")})
    if answer.accel_path is not None:
        # nginx serves the bytes, and the Range, from its internal location
        for name in ("Content-Length", "Content-Range"):
            headers.pop(name, None)
        headers["X-Accel-Redirect"] = answer.accel_path
        return Response(status=200, headers=headers)
    if answer.body is None:
        return Response(status=answer.status, headers=headers)
    request.environ[SENT_KEY] = answer.body.acked  # the request's log line counts what the client got
    return Response(answer.body, status=answer.status, headers=headers, direct_passthrough=True)


def serve(token: str, wait_in_line: bool = False) -> Response:
    """``wait_in_line``: a GET before the token's turn joins the line and answers 503 with
    Retry-After (a terminal waits by retrying); the seed's route keeps refusing it."""
    client_addr = (request.remote_addr or "") if wait_in_line and request.method == "GET" else None
    return render(downloading.answer(serving(), token, request.method, request.range, request.headers,
                                     request.environ.get("gunicorn.socket"), client_addr))


@bp.route("/api/v1/downloads/<token>", methods=["GET", "HEAD"])
@bp.route("/api/v1/downloads/<token>/<filename>", methods=["GET", "HEAD"])
def download(token: str, filename: str | None = None) -> Response:
    """The name in the URL is for tools that save under the URL's last segment (wget, curl -O)."""
    return serve(token, wait_in_line=True)


def download_url(token: str, name: str) -> str:
    """The download URL ending in the file's name (no slashes in it)."""
    return url_for("downloads.download", token=token, filename=name.replace("/", "_") or "download")
