import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhome.config import StartWith
from callhome.proto.reconnect import ReconnectPlan


def plan(**kw) -> ReconnectPlan:
    return ReconnectPlan(rng=random.Random(7), **kw)


def test_first_listed_walks_endpoints_with_max_attempts_each():
    p = plan(endpoints=3, max_attempts=2, jitter=0)
    seen = []
    for _ in range(7):
        seen.append(p.next_attempt().endpoint)
        p.failed()
    assert seen == [0, 0, 1, 1, 2, 2, 0]


def test_backoff_grows_to_the_cap_and_resets_on_connection():
    p = plan(endpoints=1, max_attempts=1, initial=1.0, cap=8.0, jitter=0)
    delays = []
    for _ in range(6):
        delays.append(p.next_attempt().delay)
        p.failed()
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    p.connected(0)
    p.disconnected()
    assert p.next_attempt().delay == 0.0


def test_last_connected_starts_where_it_last_succeeded():
    p = plan(endpoints=3, start_with=StartWith.LAST_CONNECTED, max_attempts=1)
    assert p.next_attempt().endpoint == 0
    p.failed()
    assert p.next_attempt().endpoint == 1
    p.connected(1)
    p.disconnected()
    assert p.next_attempt().endpoint == 1


def test_first_listed_returns_to_the_first_after_a_connection():
    p = plan(endpoints=3, max_attempts=1)
    p.next_attempt()
    p.failed()
    assert p.next_attempt().endpoint == 1
    p.connected(1)
    p.disconnected()
    assert p.next_attempt().endpoint == 0


def test_random_selection_uses_the_given_rng():
    a = [plan(endpoints=5, start_with=StartWith.RANDOM_SELECTION) for _ in range(2)]
    starts = []
    for p in a:
        p.next_attempt()
        p.connected(0)
        p.disconnected()
        starts.append(p.next_attempt().endpoint)
    assert starts[0] == starts[1]


@given(
    n=st.integers(1, 5),
    attempts=st.integers(1, 4),
    jitter=st.floats(0, 1),
    fails=st.integers(0, 40),
)
def test_delays_are_bounded_and_endpoints_valid(n, attempts, jitter, fails):
    p = ReconnectPlan(
        endpoints=n, max_attempts=attempts, initial=0.5, cap=10, jitter=jitter, rng=random.Random(1)
    )
    for _ in range(fails):
        a = p.next_attempt()
        assert 0 <= a.endpoint < n
        assert 0 <= a.delay <= 10
        p.failed()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        ReconnectPlan(endpoints=0)
    with pytest.raises(ValueError):
        ReconnectPlan(endpoints=1, max_attempts=0)
