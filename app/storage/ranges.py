"""Which bytes of a file a GET answers with (single ranges, If-Range), RFC 9110."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from werkzeug.datastructures import IfRange, Range

from ..errors import RangeNotSatisfiable


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


def _if_range_holds(if_range: IfRange | None, etag: str, last_modified: datetime) -> bool:
    if if_range is None or (if_range.etag is None and if_range.date is None):
        return True
    if if_range.etag is not None:
        return f'"{if_range.etag}"' == etag
    return if_range.date is not None and int(if_range.date.timestamp()) == int(last_modified.timestamp())


def select(
    size: int, range_: Range | None, if_range: IfRange | None, etag: str, last_modified: datetime
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
