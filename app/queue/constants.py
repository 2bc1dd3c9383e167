"""The numbers and words the queue's Lua scripts share with Python, in one table.

The scripts never restate them: ``lua_header()`` renders this module as the first lines of every
script (``scripts.py`` prepends it when it loads them), and the config, the engine, the admin
API, the OpenAPI document and the metrics import the same names. ``tests/unit`` checks the header
against this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .keys import SCRIPT_KEYS
from .states import ClientState, DropReason, JournalEvent, Outcome, QueueMode, Reply, StatusMode, TokenState

# -- identifiers ---------------------------------------------------------------------------
ID_CHARS = "A-Za-z0-9_-"  # URL-safe base64, what issued token ids are made of
ID_MAX = 128  # characters (all ASCII, so bytes too)
ID_RULE = re.compile(f"[{ID_CHARS}]{{1,{ID_MAX}}}")
CLIENT_MAX = 64  # characters of a client address kept with a place
HOLDER_MAX = 80  # characters of the key a client's places are counted under (services/holders.py)


def is_id(value: object) -> bool:
    """A token or connection id the scripts accept (the one rule, wherever an id arrives)."""
    return isinstance(value, str) and ID_RULE.fullmatch(value) is not None


# -- limits on numbers ---------------------------------------------------------------------
MAX_INT = 2**53 - 1  # the largest integer a Lua number holds exactly
MAX_MS = 10**13  # any time or duration in ms beyond this is a bad argument (cjson keeps 14 digits)
MS = 1000


@dataclass(frozen=True)
class Bound:
    """One of the queue's rules: its name everywhere, its bounds, its default."""

    name: str  # QueueSettings attribute and admin API field
    stored: str  # field of the settings hash in Redis
    env: str  # the environment variable that seeds it
    low: float
    high: float
    default: float
    seconds: bool = False  # a duration: seconds in Python and the API, ms in Redis

    def to_stored(self, value: float) -> int:
        return round(value * MS) if self.seconds else int(value)

    @property
    def stored_low(self) -> int:
        return self.to_stored(self.low)

    @property
    def stored_high(self) -> int:
        return self.to_stored(self.high)

    def check(self, value: object) -> str | None:
        """Why ``value`` is not a valid setting (None: it is). An integral float is an integer,
        as in JSON Schema (``5.0``)."""
        number = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        if not number or not (self.seconds or float(value).is_integer()):
            return f"{self.name} must be {'a number of seconds' if self.seconds else 'an integer'}"
        if not self.low <= value <= self.high:
            return f"{self.name} must be between {self.low:g} and {self.high:g}"
        return None

    def parse(self, value: object) -> int | float:
        """The setting as the queue takes it, or ``ValueError`` saying why not."""
        problem = self.check(value)
        if problem is not None:
            raise ValueError(problem)
        return value if self.seconds else int(value)


SECONDS_HIGH = MAX_MS / MS  # seconds

# the order is the scripts' ARGV order of the seeded settings
BOUNDS: tuple[Bound, ...] = (
    Bound("capacity", "capacity", "QUEUE_CAPACITY", 1, 10**9, 4),
    Bound("max_queue_length", "max_queue_length", "MAX_QUEUE_LENGTH", 1, 10**12, 100_000),
    Bound("admit_timeout", "admit_ms", "ADMIT_TIMEOUT", 0.001, SECONDS_HIGH, 60, seconds=True),
    Bound("stall_timeout", "stall_ms", "STALL_TIMEOUT", 0.001, SECONDS_HIGH, 30, seconds=True),
    Bound("resume_grace", "resume_ms", "RESUME_GRACE", 0.001, SECONDS_HIGH, 120, seconds=True),
    Bound("wait_grace", "wait_ms", "WAIT_GRACE", 0.001, SECONDS_HIGH, 30, seconds=True),
    Bound("max_connections_per_token", "max_connections", "MAX_CONNECTIONS_PER_TOKEN", 1, 10**6, 4),
    Bound("resume_tail", "resume_tail", "RESUME_TAIL", 1, 10**12, 32 << 20),
    Bound("egress_budget", "egress_budget", "EGRESS_BUDGET", 0, 10**13, 0),
    Bound("min_rate", "min_rate", "MIN_RATE", 1, 10**13, 1 << 20),
    Bound("max_places_per_client", "max_places", "MAX_PLACES_PER_CLIENT", 0, 10**6, 32),
    Bound("away_grace", "away_ms", "AWAY_GRACE", 0, SECONDS_HIGH, 600, seconds=True),
)
BOUND = {bound.name: bound for bound in BOUNDS}

# -- batch sizes: every loop of a script is bounded by one of these -------------------------
RECLAIM_BATCH = 64  # most items one call reclaims (or admits), all steps together
OWNER_BATCH = 4  # dead processes looked at per call
MAX_STATUS_IDS = 1000  # token ids one status call takes
STATUS_CHUNK = 50  # token ids per status call the hub sends (about a millisecond each)
MAX_INSPECT = 500  # running downloads one inspection describes
TOP_HOLDERS = 10  # clients holding the most places, as an inspection lists them
RELEASE_BATCH = 64  # pre-queued waiters one release call draws and places (about 2 ms)
PROGRESS_BATCH = 64  # download reports one progress call carries (a process sends more in several)
REPORT_FIELDS = 10  # arguments of one report (progress.lua)
REPORT_AGE_MAX = 60_000  # ms: a report older than this is refused (its process held it too long)
MAX_RELEASES = 10  # scheduled releases the line's summary lists, soonest first
DRAW_BITS = 52  # a draw is a uniform integer below 2**52 (exact in a Lua number; bias < n / 2**52)
MAX_RANGES = 64  # byte ranges kept per download (a client asking for scattered ones)
SCHEDULE_SLOTS = 16  # running downloads the ETA schedule reads one by one
RATE_WINDOW = 32  # admissions kept for the admission rate
JOURNAL_MAX = 1_000_000  # history events the journal stream keeps (about) when no one drains it

# -- times ---------------------------------------------------------------------------------
OWNER_TTL_MS = 5000  # without a sign of life for this long, a process counts as dead
# no process heard for this long (each calls every second): the queue was unreachable, and no one
# is given up for dead until OWNER_TTL_MS after it is heard again (includes/reclaim.lua: begin)
QUIET_MS = 2000
REMOVED_TTL_MS = 86_400_000  # a removed token of unknown expiry stays barred this long
# a download's throughput is what its client acknowledged over the last THROUGHPUT_WINDOW_MS, or
# over its last THROUGHPUT_BURSTS reports that brought bytes if they span longer, from samples at
# least THROUGHPUT_SAMPLE_MS apart (at most THROUGHPUT_SAMPLES kept), counted from its first
# report: what filled the socket buffers at the start is not its speed, and a client that
# acknowledges in bursts seconds apart (curl --limit-rate, a phone) is measured over several.
# The first two reports (delivery/sender.py: FIRST_REPORTS) are two samples: a download is timed
# half a second in, while the waiter behind a small file still has a wait to be told. Its speed
# is steady once two samples in a row measure it within THROUGHPUT_STEADY times of each other,
# and the stretch since the one before alone agrees (a client that read ahead at the start
# pauses, then gulps: curl --limit-rate measured 0.13, 2.0 then 5.5 MB/s at 0.6, 2 and 3 s; a
# long pause drags two window figures down alike while the newest stretch runs at speed); until
# then the ETA trusts it only to end a download sooner than the average one
# (lua/includes/schedule.lua). One sample alone counts from THROUGHPUT_WINDOW_MS after the start.
THROUGHPUT_SAMPLE_MS = 300
THROUGHPUT_WINDOW_MS = 5000
THROUGHPUT_BURSTS = 5
THROUGHPUT_SAMPLES = 12
THROUGHPUT_STEADY = 1.5
EGRESS_SLOTS, EGRESS_WINDOW = 8, 3  # per-second ring of acknowledged bytes; seconds averaged

# -- histograms kept in Redis (upper bounds in seconds; metrics.py names the same ones) ----
BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

# key variables of the scripts, in KEYS order: (key name in keys.py, the Lua local)
LUA_KEY_NAMES = {
    "waiting": "W", "presence": "P", "active": "A", "info": "I", "spent": "S", "counters": "C",
    "admits": "R", "journal": "J", "settings": "CFG", "owners": "O", "held": "H", "expiry": "E",
    "done": "D", "stats": "ST", "places": "PL", "releases": "RL", "prequeue": "PQ", "away": "AW",
}
ENUMS: dict[str, type[StrEnum]] = {
    "STATE": TokenState, "REPLY": Reply, "OUTCOME": Outcome, "DROP": DropReason, "MODE": QueueMode,
    "STATUS_MODE": StatusMode, "EVENT": JournalEvent,
}
CLIENT_STATES = tuple(ClientState)


def _lua_value(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _lua_list(values: object) -> str:
    return "{" + ", ".join(_lua_value(v) for v in values) + "}"  # type: ignore[attr-defined]


def fold_vocabulary(body: str) -> str:
    """``STATE.WAITING`` becomes ``'waiting'`` when a script is loaded: the scripts name every word
    of the vocabulary, and no table of it is built per call."""
    for table, enum in ENUMS.items():
        for member in enum:
            body = re.sub(rf"\b{table}\.{member.name}\b", _lua_value(member.value), body)
    return body


def lua_header(body: str | None = None) -> str:
    """The generated first lines of a script: KEYS, shared numbers, the vocabulary; with the
    script's ``body``, only the names it uses (each table is built anew on every call)."""
    names = [LUA_KEY_NAMES[key] for key in SCRIPT_KEYS]
    lines = [
        "-- generated from app/queue/constants.py (do not edit in a script)",
        f"local {', '.join(names)} = {', '.join(f'KEYS[{n}]' for n in range(1, len(names) + 1))}",
    ]
    numbers = {
        "MAX_INT": MAX_INT, "MAX_MS": MAX_MS, "ID_MAX": ID_MAX, "CLIENT_MAX": CLIENT_MAX, "HOLDER_MAX": HOLDER_MAX,
        "RECLAIM_BATCH": RECLAIM_BATCH, "OWNER_BATCH": OWNER_BATCH, "MAX_STATUS_IDS": MAX_STATUS_IDS,
        "MAX_INSPECT": MAX_INSPECT, "TOP_HOLDERS": TOP_HOLDERS, "RELEASE_BATCH": RELEASE_BATCH,
        "PROGRESS_BATCH": PROGRESS_BATCH, "REPORT_FIELDS": REPORT_FIELDS, "REPORT_AGE_MAX": REPORT_AGE_MAX,
        "MAX_RELEASES": MAX_RELEASES, "DRAW_LIMIT": 2**DRAW_BITS, "MAX_RANGES": MAX_RANGES, "SCHEDULE_SLOTS": SCHEDULE_SLOTS,
        "RATE_WINDOW": RATE_WINDOW, "JOURNAL_MAX": JOURNAL_MAX, "OWNER_TTL": OWNER_TTL_MS, "QUIET": QUIET_MS,
        "REMOVED_TTL": REMOVED_TTL_MS, "THROUGHPUT_SAMPLE": THROUGHPUT_SAMPLE_MS,
        "THROUGHPUT_WINDOW": THROUGHPUT_WINDOW_MS, "THROUGHPUT_SAMPLES": THROUGHPUT_SAMPLES,
        "THROUGHPUT_BURSTS": THROUGHPUT_BURSTS, "THROUGHPUT_STEADY": THROUGHPUT_STEADY,
        "EGRESS_SLOTS": EGRESS_SLOTS, "EGRESS_WINDOW": EGRESS_WINDOW,
    }
    lines += [f"local {name} = {_lua_value(value)}" for name, value in numbers.items()]
    lines.append(f"local ID_PATTERN = {_lua_value(f'^[{ID_CHARS}]+$')}")
    lines.append(f"local BUCKETS = {_lua_list(BUCKETS)}")
    lines.append(f"local FIELDS = {_lua_list(b.stored for b in BOUNDS)}")
    lines.append(f"local LOWS = {_lua_list(b.stored_low for b in BOUNDS)}")
    lines.append(f"local LIMITS = {_lua_list(b.stored_high for b in BOUNDS)}")
    for table, enum in ENUMS.items():
        members = ", ".join(f"{m.name} = {_lua_value(m.value)}" for m in enum)
        lines.append(f"local {table} = {{{members}}}")
    lines.append("local MODES = {" + ", ".join(f"{m.value} = true" for m in QueueMode) + "}  -- the set of MODE's values")
    if body is not None:
        code = re.sub(r"--[^\n]*", "", body)  # what the comments name is not used
        lines = lines[:2] + [line for line in lines[2:] if re.search(rf"\b{line.split()[1]}\b", code)]
    return "\n".join(lines) + "\n"
