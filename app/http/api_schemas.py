"""The schemas of the API's bodies, parameters and event streams, for ``openapi.py``.

One source with the code: states, bounds and the id rule come from the queue's own tables.
"""
from __future__ import annotations

from typing import Any

from ..queue.constants import BOUNDS, ID_CHARS, ID_MAX
from ..queue.states import ClientState, QueueMode, TokenState

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
                "position": {"type": ["integer", "null"],
                             "description": "not_your_turn, waiting_in_line: the place in line (null: pre-queued "
                                            "for a release)."},
                "eta_seconds": {"type": ["integer", "null"], "description": "waiting_in_line: the estimated wait."},
                "away_seconds": {"type": "number", "description": "place_lapsed: how long a place is kept away "
                                                                  "(AWAY_GRACE)."},
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
    410: ("The token can no longer be used.",
          "token_expired, token_spent, token_removed, place_lapsed (away longer than AWAY_GRACE), turn_missed"),
    412: ("If-Match / If-Unmodified-Since failed: the file is not the one the client has.",
          "precondition_failed"),
    416: ("The range is outside the file.", "range_not_satisfiable"),
    429: ("Too many requests or connections.", "rate_limited, too_many_connections, too_many_places (with `places` and `limit`)"),
    500: ("A bug; the response never carries a stack trace.", "internal"),
    503: ("A backing service is down (`reason: storage` for the file store, with Retry-After), the file's stored "
          "bytes are not the registered ones, the queue refuses newcomers, or (a download's GET before its turn) "
          "the token now waits in line: ask again after Retry-After.",
          "unavailable, file_changed, file_withdrawn, queue_full, queue_draining, waiting_in_line"),
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
LINE = {"waiting": {"type": "integer", "description": "Waiters in line and present"},
        "active": {"type": "integer"}, "capacity": {"type": "integer"}, "mode": MODE}
AWAY = {"type": "integer", "description": "Waiters away (no stream, no poll for WAIT_GRACE): they keep their "
                                          "places for AWAY_GRACE, are not admitted meanwhile and do not delay "
                                          "anyone behind them"}
PREQUEUE = {  # a waiter that joined before its file's scheduled release: position null until it
    "release_at": {"type": "string", "format": "date-time",
                   "description": "Pre-queued: the release, when every pre-queued waiter is placed in line in a "
                                  "random order, ahead of whoever joins after it"},
    "prequeued": {"type": "integer", "description": "Waiters in the pre-queues of releases to come"},
}
TOKEN_STATUS = {
    "type": "object",
    "required": ["state", "position", "eta_seconds", "waiting", "active", "capacity", "mode"],
    "properties": {"state": CLIENT_STATE, "position": NULLABLE_INT, "eta_seconds": NULLABLE_INT,
                   "download_url": {"type": "string"}, **LINE, **PREQUEUE},
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
    "required": ["now", "line", "settings", "downloads", "totals", "last_hour", "places"],
    "properties": {
        "now": {"type": "string", "format": "date-time"},
        "line": {"type": "object", "required": ["waiting", "active", "capacity", "mode"], "properties": {
            **LINE, "away": AWAY, "admissions_per_second": {"type": "number"}, "newcomer_eta_seconds": NULLABLE_INT,
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
        "places": {"type": "object", "required": ["clients", "limit", "refused", "top"], "properties": {
            "clients": {"type": "integer"}, "limit": NULLABLE_INT, "refused": {"type": "integer"},
            "top": {"type": "array", "items": {"type": "object", "required": ["client", "places"], "properties": {
                "client": {"type": "string", "description": "IPv4 with its last octet hidden, an IPv6 /64, "
                                                            "or an issuer's subject abbreviated"},
                "places": {"type": "integer"}}}}}},
    },
}
RELEASE = {"type": "object", "required": ["file_id", "name", "release_at"], "properties": {
    "file_id": {"type": "integer"}, "name": {"type": "string"},
    "release_at": {"type": ["string", "null"], "format": "date-time",
                   "description": "Everyone who joins before it is placed in a random order at it."}}}
BEARER = [{"adminKey": []}, {"adminBasic": []}]


def obj(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


ERROR_EVENT = {"$ref": "#/components/schemas/Error"}
WAIT_EVENTS = {
    "position": {**obj(position=NULLABLE_INT, eta_seconds=NULLABLE_INT, **LINE),
                 "properties": {"position": NULLABLE_INT, "eta_seconds": NULLABLE_INT, **LINE, **PREQUEUE}},
    "ready": obj(download_url={"type": "string"},
                     admit_deadline={"type": "string", "format": "date-time",
                                     "description": "Start the download before this, or the slot goes on."}),
    "error": ERROR_EVENT,
    "heartbeat": {**obj(every_seconds={"type": "integer"}),
                  "description": "Sent when nothing else was for every_seconds: a client that hears nothing "
                                 "for twice as long should reconnect (its connection is dead)."},
}
PROGRESS_EVENTS = {
    "progress": obj(state=CLIENT_STATE, bytes={"type": "integer"}, size={"type": "integer"},
                        rate_bytes_per_second={"type": "integer"}, eta_seconds=NULLABLE_INT),
    "done": obj(bytes={"type": "integer"}, size={"type": "integer"}, sha256={"type": "string"}),
    "error": ERROR_EVENT,
}
# the seed's stream: unnamed messages carrying the place in line (0: download now), or an error
SEED_EVENTS = {"message": {"type": "integer", "minimum": 0}, "error": ERROR_EVENT}
