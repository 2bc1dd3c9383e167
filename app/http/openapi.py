"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of every route.

Kept here beside the blueprints, as data; ``tests/test_openapi.py`` checks it against the
app's URL map (every route documented, every documented route served) and runs Schemathesis
against the live service.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ..services.holders import SUBJECT_MAX
from .api_schemas import (
    ADMIN_STATE,
    AWAY,
    BEARER,
    CLIENT_STATE,
    ERROR,
    ERRORS,
    FILE_ID,
    FILENAME,
    LINE,
    NULLABLE_INT,
    PREQUEUE,
    PROGRESS_EVENTS,
    RELEASE,
    SEED_EVENTS,
    SETTINGS,
    TOKEN,
    TOKEN_ID,
    TOKEN_STATE,
    TOKEN_STATUS,
    WAIT_EVENTS,
)

bp = Blueprint("openapi", __name__)

JSON = "application/json"
SSE = "text/event-stream"

def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(summary: str, ok: dict[int, dict[str, Any]], errors: tuple[int, ...], *, tag: str,
        params: tuple[dict[str, Any], ...] = (), body: dict[str, Any] | None = None,
        security: list[dict[str, list[str]]] | None = None, body_required: bool = True) -> dict[str, Any]:
    """One operation; every error status shares the one error schema, and 500 is always listed."""
    responses: dict[str, Any] = {str(status): response for status, response in ok.items()}
    for status in sorted({*errors, 500} - set(ok)):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
    if security is not None:
        op["security"] = security
    return op


def _sse(description: str, events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A ``text/event-stream`` whose events carry JSON ``data`` of their kind's schema."""
    return {"description": description, "content": {SSE: {"schema": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"enum": list(events)},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": {"anyOf": list(events.values())}},
        },
    }}}}


def _text(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


HTML = _text("text/html", "An HTML page.")
HTML_ERROR = {"description": "A page saying what went wrong, in the page's language (JSON for a path no page "
                              "route matches, as everywhere)",
              "content": {"text/html": {"schema": {"type": "string"}},
                          JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
CHECKSUMS = _text("text/plain", "Lines of `<sha256 hex>  <name>`.")
ADMIN_ERRORS = (401, 403, 503)
FILE_BODY = {"description": "The file (200) or the requested range (206), with the file's own Content-Type "
                            "(application/octet-stream when the catalog knows none).",
             "headers": {"Repr-Digest": {"description": "RFC 9530: the SHA-256 of the whole file, on 200 and 206.",
                                         "schema": {"type": "string"}}},
             "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
DOWNLOAD_ERRORS = (403, 404, 409, 410, 412, 416, 429, 503)
NOT_MODIFIED = {"description": "If-None-Match / If-Modified-Since: the client's copy is current."}


def _download(summary: str, params: tuple[dict[str, Any], ...] = (TOKEN,)) -> dict[str, Any]:
    get = _op(summary, {200: FILE_BODY, 206: FILE_BODY, 304: NOT_MODIFIED}, DOWNLOAD_ERRORS, tag="downloads",
              params=params)
    head = _op(summary + " (headers only)", {200: {"description": "Headers of the file."},
                                             206: {"description": "Headers of the range."}, 304: NOT_MODIFIED},
               DOWNLOAD_ERRORS, tag="downloads", params=params)
    return {"get": get, "head": head}


def document() -> dict[str, Any]:
    admin = {"tag": "admin", "security": BEARER}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Download queue",
            "version": "1",
            "description": "Signed download tokens, a fair FIFO queue with live positions over "
                           "Server-Sent Events, and fast resumable downloads. Every error is "
                           "`{\"error\": {\"code\", \"message\"}}`.",
        },
        "paths": {
            "/healthz": {"get": _op(
                "Liveness of Redis and the database (503 without them), and of the file store (`degraded` "
                "without it: the queue runs and cached files are served)", {200: _json({
                    "type": "object", "required": ["status", "checks"],
                    "properties": {"status": {"enum": ["ok", "degraded"]}, "checks": {"type": "object"}}})},
                (503,), tag="ops")},
            "/metrics": {"get": _op(
                "Prometheus metrics: bearer METRICS_TOKEN when one is set (open without one in a local run, "
                "refused in production)", {200: _text("text/plain", "Prometheus text format 0.0.4.")},
                (401, 403, 503), tag="ops", security=[{"metricsToken": []}, {}])},
            "/api/v1/openapi.json": {"get": _op("This document", {200: _json({"type": "object"})}, (), tag="ops")},
            "/": {"get": _op("The list of public files", {200: HTML, 503: HTML_ERROR, 500: HTML_ERROR}, (),
                             tag="pages")},
            "/favicon.ico": {"get": _op("The icon", {200: _text("image/svg+xml", "An SVG icon.")}, (), tag="pages")},
            "/files/{file_id}": {"get": _op("A file's download page",
                                            {200: HTML, 404: HTML_ERROR, 503: HTML_ERROR, 500: HTML_ERROR}, (),
                                            tag="pages", params=(FILE_ID,))},
            "/files/{file_id}.sha256": {"get": _op(
                "A public file's SHA-256 as `sha256sum -c` reads it", {200: CHECKSUMS}, (404, 503), tag="pages",
                params=(FILE_ID,))},
            "/SHA256SUMS": {"get": _op("Every public file's SHA-256, one `sha256sum` line each", {200: CHECKSUMS},
                                       (503,), tag="pages")},
            "/api/v1/files": {"get": _op("The public files (what a token may be asked for)", {200: _json({
                "type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "name", "size", "sha256", "release_at", "page_url", "tokens_url"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                   "size": {"type": "integer"}, "sha256": {"type": "string"},
                                   "release_at": {"type": ["string", "null"], "format": "date-time"},
                                   "page_url": {"type": "string"}, "tokens_url": {"type": "string"}}}}}})},
                (503,), tag="tokens")},
            "/api/v1/files/{file_id}/tokens": {"post": _op(
                "Issue a download token (rate limited per client address)", {201: _json({
                    "type": "object",
                    "required": ["token", "file_id", "expires_at", "queue_url", "status_url", "download_url"],
                    "properties": {"token": {"type": "string"}, "file_id": {"type": "integer"},
                                   "expires_at": {"type": "string", "format": "date-time"},
                                   "queue_url": {"type": "string"}, "status_url": {"type": "string"},
                                   "download_url": {"type": "string"}}}, "Issued")},
                (400, 401, 403, 404, 429, 503), tag="tokens", params=(FILE_ID,),
                security=[{}, {"issuerKey": []}], body_required=False, body={
                    "type": "object", "additionalProperties": False,
                    "properties": {"subject": {
                        "type": "string", "minLength": 1, "maxLength": SUBJECT_MAX,
                        "description": "With the issuer API key only: the issuing site's user. Their "
                                       "places in line count against them (MAX_PLACES_PER_CLIENT); "
                                       "a token issued with the key and no subject counts against no one."}}})},
            "/api/v1/queue": {"get": _op("The line as a newcomer sees it", {200: _json({
                "type": "object",
                "required": ["capacity", "active", "waiting", "away", "mode", "eta_seconds", "prequeued",
                             "releases"],
                "properties": {**LINE, "away": AWAY, "eta_seconds": NULLABLE_INT, "prequeued": PREQUEUE["prequeued"],
                               "releases": {"type": "array", "description": "Scheduled releases with a pre-queue, "
                                                                          "soonest first (at most 10)",
                                            "items": {"type": "object",
                                                      "required": ["file_id", "release_at", "prequeued"],
                                                      "properties": {"file_id": {"type": "integer"},
                                                                     "release_at": PREQUEUE["release_at"],
                                                                     "prequeued": {"type": "integer"}}}}}})},
                (503,), tag="queue")},
            "/api/v1/queue/{token}": {
                "get": _op("Join and wait: position, ready and error events over SSE", {200: _sse(
                    "Events `position`, then `ready` (or `error`); `heartbeat` while nothing else is sent.", WAIT_EVENTS)},
                    (403, 404), tag="queue", params=(TOKEN,)),
                "post": _op("Join (or re-attach) without a stream; poll the status to keep the place",
                            {200: _json(TOKEN_STATUS)}, (403, 404, 410, 429, 503), tag="queue", params=(TOKEN,)),
                "delete": _op("Leave the line or give back the slot", {200: _json({
                    "type": "object", "required": ["left", "previous_state"],
                    "properties": {"left": {"type": "boolean"}, "previous_state": CLIENT_STATE}})},
                    (403, 404, 503), tag="queue", params=(TOKEN,)),
            },
            "/api/v1/queue/{token}/status": {"get": _op("The token's state (a poll keeps a waiter's place)",
                                                        {200: _json(TOKEN_STATUS)}, (403, 404, 503),
                                                        tag="queue", params=(TOKEN,))},
            "/api/v1/queue/{token}/progress": {"get": _op(
                "The download's progress as the server counts it (bytes the client acknowledged)", {
                    200: _sse("`progress` about once a second while the slot is held, then `done` or `error`.",
                              PROGRESS_EVENTS)}, (403, 404, 410, 503), tag="queue", params=(TOKEN,))},
            "/api/v1/downloads/{token}": _download("Download the file of an admitted token (Range, If-Range)"),
            "/api/v1/downloads/{token}/{filename}": _download(
                "The same, under a URL ending in the file's name (what wget and curl -O save as)",
                (TOKEN, FILENAME)),
            "/request/generate/{file_id}": {
                method: _op("Seed protocol: issue a token as text/plain", {200: _text("text/plain", "The token.")},
                            (401, 403, 404, 429, 503), tag="seed", params=(FILE_ID,))
                for method in ("get", "post")},
            "/request/order/{token}": {"get": _op("Seed protocol: the place in line as unnamed SSE messages", {
                200: _sse("Messages carrying the place; 0 means download now.", SEED_EVENTS)},
                (403, 404), tag="seed", params=(TOKEN,))},
            "/request/download/{token}": _download("Seed protocol: the download"),
            "/admin": {"get": _op("The live admin page", {200: HTML}, ADMIN_ERRORS, **admin)},
            "/api/v1/admin/queue": {"get": _op("The line, its rules and every running download",
                                               {200: _json(ADMIN_STATE)}, ADMIN_ERRORS, **admin)},
            "/api/v1/admin/queue/settings": {"patch": _op(
                "Change the queue's rules on every host (durations in seconds)", {200: _json(ADMIN_STATE)},
                (400, *ADMIN_ERRORS), body=SETTINGS, **admin)},
            **{f"/api/v1/admin/queue/{action}": {"post": _op(summary, {200: _json(ADMIN_STATE)}, ADMIN_ERRORS,
                                                             **admin)}
               for action, summary in (("pause", "Pause admissions (waiters keep their places)"),
                                       ("resume", "Open the line again (after pause or drain)"),
                                       ("drain", "Refuse newcomers; serve the line to its end"))},
            "/api/v1/admin/tokens/{token_id}": {"delete": _op(
                "Remove a token (waiting or downloading); its slot goes to the next waiter", {200: _json({
                    "type": "object", "required": ["removed", "previous_state"],
                    "properties": {"removed": {"type": "boolean"}, "previous_state": TOKEN_STATE}})},
                (400, 404, *ADMIN_ERRORS), params=(TOKEN_ID,), **admin)},
            "/api/v1/admin/files/{file_id}": {"patch": _op(
                "Schedule a file's release (null: release now); its pre-queue follows", {200: _json(RELEASE)},
                (400, 404, *ADMIN_ERRORS), params=(FILE_ID,), body={
                    "type": "object", "required": ["release_at"], "additionalProperties": False,
                    "properties": {"release_at": RELEASE["properties"]["release_at"]}}, **admin)},
            "/api/v1/admin/audit": {"get": _op("The latest operator changes", {200: _json({
                "type": "object", "required": ["changes"], "properties": {"changes": {"type": "array", "items": {
                    "type": "object", "required": ["at", "actor", "action", "details"]}}}})},
                ADMIN_ERRORS, **admin)},
            "/api/v1/admin/events": {"get": _op("The admin state every second over SSE (never ends)", {
                200: _sse("`state` events.", {"state": ADMIN_STATE})}, ADMIN_ERRORS, **admin)},
        },
        "components": {
            "schemas": {"Error": ERROR},
            "responses": {f"E{status}": {"description": f"{description} Codes: {codes}.",
                                         "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
                          for status, (description, codes) in ERRORS.items()},
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer", "description": "ADMIN_API_KEY"},
                "adminBasic": {"type": "http", "scheme": "basic", "description": "any user, ADMIN_API_KEY as password"},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"},
                "issuerKey": {"type": "http", "scheme": "bearer",
                              "description": "ISSUER_API_KEY, when the deployment sets one"},
            },
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    return jsonify(document())
