import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhome.proto.schedule import (
    Periodic,
    Persistent,
    next_dial,
    next_periodic_dial,
    parse_date_and_time,
)

ints = st.integers(-(10**12), 10**12)


@given(now=ints, anchor=ints, period=st.integers(1, 10**7))
def test_next_periodic_dial_is_the_next_boundary(now, anchor, period):
    when = next_periodic_dial(now, anchor, period)
    assert now <= when < now + period
    assert (when - anchor) % period == 0


@given(now=st.floats(0, 2e9), anchor=st.floats(0, 2e9), period=st.floats(0.5, 1e6))
def test_next_periodic_dial_floats_stay_in_range(now, anchor, period):
    when = next_periodic_dial(now, anchor, period)
    assert now <= when <= now + period


def test_non_positive_period_is_refused():
    with pytest.raises(ValueError):
        next_periodic_dial(10, 0, 0)


def test_next_dial():
    periodic = Periodic(period=10.0, anchor=5.0)
    assert next_dial(periodic, now=17.0, graceful=True, applied_at=0.0) == 25.0
    assert next_dial(periodic, now=17.0, graceful=False, applied_at=0.0) == 17.0
    assert next_dial(Persistent(), now=17.0, graceful=True, applied_at=0.0) == 17.0
    no_anchor = Periodic(period=10.0)
    assert next_dial(no_anchor, now=17.0, graceful=True, applied_at=3.0) == 23.0


def test_date_and_time():
    assert parse_date_and_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_date_and_time("1970-01-01T01:00:00.5+01:00") == 0.5
    for bad in ("yesterday", "1970-01-01 00:00:00Z", "1970-01-01T00:00:00"):
        with pytest.raises(ValueError):
            parse_date_and_time(bad)
