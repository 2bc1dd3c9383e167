"""Which bytes of a file a GET answers with, RFC 9110: conditionals (13.2.2), single ranges, If-Range."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from werkzeug.datastructures import Range
from werkzeug.http import parse_date, parse_etags

from ..errors import PreconditionFailed, RangeNotSatisfiable

NOT_MODIFIED = 304


@dataclass(frozen=True)
class Selection:
    start: int
    end: int  # exclusive
    partial: bool

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def _seconds(when: datetime) -> int:
    return int(when.timestamp())


def _if_range_holds(if_range: str | None, etag: str, last_modified: datetime) -> bool:
    """If-Range compares strongly: a weak tag never matches (RFC 9110 13.1.5)."""
    if if_range is None or not if_range.strip():
        return True
    value = if_range.strip()
    if value.startswith(("W/", '"')):
        return value == etag
    date = parse_date(value)
    return date is not None and _seconds(date) == _seconds(last_modified)


def evaluate_preconditions(
    headers: Mapping[str, str], method: str, etag: str, last_modified: datetime
) -> int | None:
    """RFC 9110 13.2.2, in its order: raise ``PreconditionFailed`` (412), return 304, or None to go on.

    If-Match uses the strong comparison, If-None-Match the weak one; the dates are ignored when
    the matching tag header is present."""
    tag = etag.strip('"')
    if_match = headers.get("If-Match")
    if if_match is not None:
        tags = parse_etags(if_match)
        if not (tags.star_tag or tags.contains(tag)):
            raise PreconditionFailed("If-Match: this is not the version of the file the client has.")
    else:
        since = parse_date(headers.get("If-Unmodified-Since"))
        if since is not None and _seconds(last_modified) > _seconds(since):
            raise PreconditionFailed("If-Unmodified-Since: the file changed since then.")
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        if tags.star_tag or tags.contains_weak(tag):
            if method in ("GET", "HEAD"):
                return NOT_MODIFIED
            raise PreconditionFailed("If-None-Match: the client already has this version.")
    elif method in ("GET", "HEAD"):
        modified_since = parse_date(headers.get("If-Modified-Since"))
        if modified_since is not None and _seconds(last_modified) <= _seconds(modified_since):
            return NOT_MODIFIED
    return None


def select(
    size: int, range_: Range | None, if_range: str | None, etag: str, last_modified: datetime
) -> Selection:
    """The bytes to send; a malformed, multi-part or stale (If-Range) range means the whole file."""
    whole = Selection(0, size, False)
    if range_ is None or range_.units != "bytes" or len(range_.ranges) != 1:
        return whole
    if not _if_range_holds(if_range, etag, last_modified):
        return whole
    start, stop = range_.ranges[0]
    if start < 0:  # suffix range: the last -start bytes
        if size == 0:
            raise RangeNotSatisfiable("The file is empty.", size=size)
        return Selection(max(0, size + start), size, True)
    if start >= size:
        raise RangeNotSatisfiable(f"The range starts at {start}, beyond the {size}-byte file.", size=size)
    return Selection(start, size if stop is None else min(stop, size), True)
