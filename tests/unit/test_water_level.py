"""Max-min fair shares of a host's bandwidth limit."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.delivery.bandwidth import GREEDY, water_level


def test_the_modest_keep_their_demand_the_others_split_the_rest():
    assert water_level(100, []) == 100
    assert water_level(100, [GREEDY, GREEDY]) == 50
    assert water_level(100, [10, GREEDY, GREEDY]) == 45
    assert water_level(100, [10, 20]) == 90  # everyone satisfied: either may grow into what is left


@given(st.floats(1, 1e9), st.lists(st.one_of(st.just(GREEDY), st.floats(0, 1e9)), min_size=1, max_size=30))
def test_shares_never_exceed_the_limit_and_fill_it_when_someone_wants_more(limit, demands):
    level = water_level(limit, demands)
    taken = sum(level if d == GREEDY else min(d, level) for d in demands)
    assert taken <= limit * (1 + 1e-9)
    if any(d == GREEDY or d > level for d in demands):
        assert taken >= limit * (1 - 1e-9)
