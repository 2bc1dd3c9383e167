"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of every route.

Kept here beside the blueprints, as data; ``tests/test_openapi.py`` checks it against the
app's URL map (every route documented, every documented route served) and runs Schemathesis
against the live service.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ..queue.constants import BOUNDS, ID_CHARS, ID_MAX
from ..queue.states import ClientState, QueueMode, TokenState

bp = Blueprint("openapi", __name__)

JSON = "application/json"
SSE = "text/event-stream"

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable reason."},
                "message": {"type": "string"},
                "retry_after": {"type": "integer", "description": "Seconds to wait before trying again."},
                "position": {"type": "integer", "description": "not_your_turn: the place in line."},
                "field": {"type": "string", "description": "invalid_request: the offending field."},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                "size": {"type": "integer"},
            },
        }
    },
}
# status -> (description, the codes ``error.code`` takes with it)
ERRORS: dict[int, tuple[str, str]] = {
    400: ("The request is malformed.", "bad_request, invalid_request"),
    401: ("A credential is required.", "unauthorized"),
    403: ("The credential or token is not valid, or the feature is disabled.", "forbidden, invalid_token"),
    404: ("No such file or route.", "not_found, unknown_file"),
    409: ("The token may not download now.", "not_your_turn, not_in_queue"),
    410: ("The token can no longer be used.", "token_expired, token_spent, token_removed"),
    412: ("If-Match / If-Unmodified-Since failed: the file is not the one the client has.",
          "precondition_failed"),
    416: ("The range is outside the file.", "range_not_satisfiable"),
    429: ("Too many requests or connections.", "rate_limited, too_many_connections"),
    500: ("A bug; the response never carries a stack trace.", "internal"),
    503: ("A backing service is down or the queue refuses newcomers.", "unavailable, queue_full, queue_draining"),
}

TOKEN = {"name": "token", "in": "path", "required": True, "description": "A signed download token.",
         "schema": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[A-Za-z0-9_.-]+$"}}
FILE_ID = {"name": "file_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}
FILENAME = {"name": "filename", "in": "path", "required": True, "description": "Any name; the token decides the file.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/]+$"}}
TOKEN_ID = {"name": "token_id", "in": "path", "required": True, "description": "A token's id (not the token).",
            "schema": {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": f"^[{ID_CHARS}]+$"}}

CLIENT_STATE = {"type": "string", "enum": [str(state) for state in ClientState]}
TOKEN_STATE = {"type": "string", "enum": [str(state) for state in TokenState],
               "description": "The token's state in the queue."}
MODE = {"type": "string", "enum": [str(mode) for mode in QueueMode]}
NULLABLE_INT = {"type": ["integer", "null"]}
LINE = {"waiting": {"type": "integer"}, "active": {"type": "integer"}, "capacity": {"type": "integer"},
        "mode": MODE}
TOKEN_STATUS = {
    "type": "object",
    "required": ["state", "position", "eta_seconds", "waiting", "active", "capacity", "mode"],
    "properties": {"state": CLIENT_STATE, "position": NULLABLE_INT, "eta_seconds": NULLABLE_INT,
                   "download_url": {"type": "string"}, **LINE},
}
SETTINGS = {
    "type": "object",
    "properties": {  # the bounds the scripts enforce (app/queue/constants.py); durations in seconds
        bound.name: {"type": "number" if bound.seconds else "integer", "minimum": bound.low, "maximum": bound.high}
        for bound in BOUNDS
    },
    "additionalProperties": False,
    "minProperties": 1,
}
ADMIN_STATE = {
    "type": "object",
    "required": ["now", "line", "settings", "downloads", "totals", "last_hour"],
    "properties": {
        "now": {"type": "string", "format": "date-time"},
        "line": {"type": "object", "required": ["waiting", "active", "capacity", "mode"], "properties": {
            **LINE, "admissions_per_second": {"type": "number"}, "newcomer_eta_seconds": NULLABLE_INT,
            "egress_bytes_per_second": NULLABLE_INT, "admission_limit": NULLABLE_INT}},
        "settings": {"type": "object", "properties": {**SETTINGS["properties"], "mode": MODE}},
        "downloads": {"type": "array", "items": {"type": "object", "required": ["token_id", "state"], "properties": {
            "token_id": {"type": "string"}, "state": TOKEN_STATE, "file_id": {"type": "integer"},
            "file_name": {"type": ["string", "null"]}, "client": {"type": "string"},
            "bytes_sent": {"type": "integer"}, "size": {"type": "integer"},
            "rate_bytes_per_second": {"type": "integer"}, "connections": {"type": "integer"},
            "admitted_at": {"type": ["string", "null"]}, "started_at": {"type": ["string", "null"]},
            "lease_seconds_left": {"type": "integer"}}}},
        "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
        "last_hour": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
    },
}
BEARER = [{"adminKey": []}, {"adminBasic": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(summary: str, ok: dict[int, dict[str, Any]], errors: tuple[int, ...], *, tag: str,
        params: tuple[dict[str, Any], ...] = (), body: dict[str, Any] | None = None,
        security: list[dict[str, list[str]]] | None = None) -> dict[str, Any]:
    """One operation; every error status shares the one error schema, and 500 is always listed."""
    responses: dict[str, Any] = {str(status): response for status, response in ok.items()}
    for status in sorted({*errors, 500}):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
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


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


ERROR_EVENT = {"$ref": "#/components/schemas/Error"}
WAIT_EVENTS = {
    "position": _object(position={"type": "integer"}, eta_seconds=NULLABLE_INT, **LINE),
    "ready": _object(download_url={"type": "string"},
                     admit_deadline={"type": "string", "format": "date-time",
                                     "description": "Start the download before this, or the slot goes on."}),
    "error": ERROR_EVENT,
}
PROGRESS_EVENTS = {
    "progress": _object(state=CLIENT_STATE, bytes={"type": "integer"}, size={"type": "integer"},
                        rate_bytes_per_second={"type": "integer"}, eta_seconds=NULLABLE_INT),
    "done": _object(bytes={"type": "integer"}, size={"type": "integer"}, sha256={"type": "string"}),
    "error": ERROR_EVENT,
}
# the seed's stream: unnamed messages carrying the place in line (0: download now), or an error
SEED_EVENTS = {"message": {"type": "integer", "minimum": 0}, "error": ERROR_EVENT}


def _text(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


HTML = _text("text/html", "An HTML page.")
ADMIN_ERRORS = (401, 403, 503)
FILE_BODY = {"description": "The file (200) or the requested range (206), with the file's own Content-Type "
                            "(application/octet-stream when the catalog knows none).",
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
            "/healthz": {"get": _op("Liveness of Redis and the database", {200: _json({
                "type": "object", "required": ["status", "checks"],
                "properties": {"status": {"const": "ok"}, "checks": {"type": "object"}}})}, (503,), tag="ops")},
            "/metrics": {"get": _op(
                "Prometheus metrics: bearer METRICS_TOKEN when one is set (open without one in a local run, "
                "refused in production)", {200: _text("text/plain", "Prometheus text format 0.0.4.")},
                (401, 403, 503), tag="ops", security=[{"metricsToken": []}, {}])},
            "/api/v1/openapi.json": {"get": _op("This document", {200: _json({"type": "object"})}, (), tag="ops")},
            "/": {"get": _op("The list of public files", {200: HTML}, (503,), tag="pages")},
            "/favicon.ico": {"get": _op("The icon", {200: _text("image/svg+xml", "An SVG icon.")}, (), tag="pages")},
            "/files/{file_id}": {"get": _op("A file's download page", {200: HTML}, (404, 503), tag="pages",
                                            params=(FILE_ID,))},
            "/api/v1/files/{file_id}/tokens": {"post": _op(
                "Issue a download token (rate limited per client address)", {201: _json({
                    "type": "object",
                    "required": ["token", "file_id", "expires_at", "queue_url", "status_url", "download_url"],
                    "properties": {"token": {"type": "string"}, "file_id": {"type": "integer"},
                                   "expires_at": {"type": "string", "format": "date-time"},
                                   "queue_url": {"type": "string"}, "status_url": {"type": "string"},
                                   "download_url": {"type": "string"}}}, "Issued")},
                (401, 403, 404, 429, 503), tag="tokens", params=(FILE_ID,),
                security=[{}, {"issuerKey": []}])},
            "/api/v1/queue": {"get": _op("The line as a newcomer sees it", {200: _json({
                "type": "object", "required": ["capacity", "active", "waiting", "mode", "eta_seconds"],
                "properties": {**LINE, "eta_seconds": NULLABLE_INT}})}, (503,), tag="queue")},
            "/api/v1/queue/{token}": {
                "get": _op("Join and wait: position, ready and error events over SSE", {200: _sse(
                    "Events `position`, then `ready` (or `error`); heartbeat comments.", WAIT_EVENTS)},
                    (403, 404), tag="queue", params=(TOKEN,)),
                "post": _op("Join (or re-attach) without a stream; poll the status to keep the place",
                            {200: _json(TOKEN_STATUS)}, (403, 404, 410, 503), tag="queue", params=(TOKEN,)),
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
