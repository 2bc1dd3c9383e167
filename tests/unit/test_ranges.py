"""Which bytes a GET answers with (RFC 9110): ranges, If-Range, the conditionals."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import Range
from werkzeug.http import http_date

from app.delivery.ranges import NOT_MODIFIED, evaluate_preconditions, select
from app.errors import PreconditionFailed, RangeNotSatisfiable

ETAG = '"abc"'
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_single_suffix_open_and_whole():
    assert select(100, Range("bytes", [(10, 20)]), None, ETAG, WHEN).content_range(100) == "bytes 10-19/100"
    suffix = select(100, Range("bytes", [(-30, None)]), None, ETAG, WHEN)
    assert (suffix.start, suffix.end, suffix.partial) == (70, 100, True)
    assert select(100, Range("bytes", [(90, None)]), None, ETAG, WHEN).length == 10
    assert select(100, Range("bytes", [(0, 200)]), None, ETAG, WHEN).end == 100
    whole = select(100, None, None, ETAG, WHEN)
    assert (whole.start, whole.end, whole.partial) == (0, 100, False)


def test_multi_range_and_a_stale_if_range_mean_the_whole_file():
    assert not select(100, Range("bytes", [(0, 5), (10, 15)]), None, ETAG, WHEN).partial
    assert not select(100, Range("bytes", [(0, 5)]), '"other"', ETAG, WHEN).partial
    assert not select(100, Range("bytes", [(0, 5)]), 'W/"abc"', ETAG, WHEN).partial  # weak never matches
    assert select(100, Range("bytes", [(0, 5)]), ETAG, ETAG, WHEN).partial
    assert select(100, Range("bytes", [(0, 5)]), http_date(WHEN), ETAG, WHEN).partial


def test_unsatisfiable_ranges():
    with pytest.raises(RangeNotSatisfiable):
        select(100, Range("bytes", [(100, None)]), None, ETAG, WHEN)
    with pytest.raises(RangeNotSatisfiable):
        select(0, Range("bytes", [(-5, None)]), None, ETAG, WHEN)


def test_conditionals_in_rfc_order():
    assert evaluate_preconditions({"If-None-Match": '"abc"'}, "GET", ETAG, WHEN) == NOT_MODIFIED
    assert evaluate_preconditions({"If-None-Match": 'W/"abc"'}, "HEAD", ETAG, WHEN) == NOT_MODIFIED
    assert evaluate_preconditions({"If-Modified-Since": http_date(WHEN)}, "GET", ETAG, WHEN) == NOT_MODIFIED
    # If-None-Match present: the date is ignored
    assert evaluate_preconditions({"If-None-Match": '"x"', "If-Modified-Since": http_date(WHEN)},
                                  "GET", ETAG, WHEN) is None
    with pytest.raises(PreconditionFailed):
        evaluate_preconditions({"If-Match": '"other"'}, "GET", ETAG, WHEN)
    with pytest.raises(PreconditionFailed):
        evaluate_preconditions({"If-Unmodified-Since": "Thu, 01 Jan 2026 00:00:00 GMT"}, "GET", ETAG, WHEN)
    assert evaluate_preconditions({"If-Match": "*"}, "GET", ETAG, WHEN) is None
