"""The queue's rules as Python holds them and as the scripts store them."""
from __future__ import annotations

import pytest

from app.queue.constants import BOUND, BOUNDS
from app.queue.settings import QueueSettings, stored_changes
from app.queue.states import QueueMode


def test_stored_and_back():
    settings = QueueSettings(capacity=8, admit_timeout=1.5, egress_budget=10**9, mode=QueueMode.PAUSED)
    stored = dict(zip((b.stored for b in BOUNDS), settings.seed_args(), strict=True))
    assert stored["admit_ms"] == 1500
    assert QueueSettings.from_stored({**stored, "mode": "paused"}) == settings
    assert QueueSettings.from_stored({"capacity": 2}) == QueueSettings(capacity=2)


def test_changes_become_field_value_pairs():
    assert stored_changes(capacity=3, wait_grace=2, mode="draining") == [
        "capacity", 3, "wait_ms", 2000, "mode", "draining"]
    with pytest.raises(ValueError):
        stored_changes(colour="blue")


def test_bounds_check_what_the_admin_api_and_the_config_accept():
    assert BOUND["capacity"].check(4) is None
    assert "integer" in BOUND["capacity"].check(1.5)
    assert BOUND["capacity"].parse(5.0) == 5 and isinstance(BOUND["capacity"].parse(5.0), int)
    assert "integer" in BOUND["capacity"].check(True)
    assert "between" in BOUND["capacity"].check(0)
    assert BOUND["wait_grace"].check(0.001) is None and "between" in BOUND["wait_grace"].check(0.0001)
    assert "seconds" in BOUND["wait_grace"].check(float("nan"))
    for bound in BOUNDS:
        assert bound.check(bound.default) is None, bound.name
        assert bound.stored_high <= 10**13  # cjson keeps 14 significant digits
