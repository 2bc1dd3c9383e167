"""Max-min fair shares of a host's bandwidth limit."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.delivery.bandwidth import GREEDY, REFRESH_INTERVAL, ConnectionShare, water_level


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


def test_a_bursty_slow_connection_demands_its_average_not_its_silent_intervals():
    """A slow client acknowledges ~1 MiB once a second: each 0.25 s interval alone says 0 three
    times out of four; the demand is the average over DEMAND_WINDOW."""
    share = ConnectionShare(None, "t", "c", rate=4 << 20)  # type: ignore[arg-type]
    now, demands, acked = share._since, [], 0
    share.acked = lambda: acked
    for n in range(40):
        now += REFRESH_INTERVAL
        if n % 4 == 3:
            acked += 1 << 20
        demands.append(share.demand(now, REFRESH_INTERVAL))
    settled = demands[len(demands) // 2:]
    assert min(settled) > 0.7 * (1 << 20) and max(settled) < 1.3 * (1 << 20), settled


def test_a_connection_held_back_by_its_pace_is_greedy():
    share = ConnectionShare(None, "t", "c", rate=1 << 20)  # type: ignore[arg-type]
    share.acked = lambda: int(REFRESH_INTERVAL * (1 << 20))
    assert share.demand(share._since + REFRESH_INTERVAL, REFRESH_INTERVAL) == GREEDY
