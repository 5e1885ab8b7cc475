"""Numbers from outside are checked in one place (explorer.validate): refused with a message that
names the argument and the range, never silently changed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from explorer.validate import SEED_MAX, check_float, check_int, check_seed


@pytest.mark.parametrize("value", [0, 10**6, -1, 2.5, math.nan, math.inf, -math.inf, "x", None,
                                   "1e999", [3]])
def test_bad_whole_numbers_are_refused_with_the_range(value):
    with pytest.raises(ValueError, match=r"steps must be a whole number in 1\.\.1000, got"):
        check_int("steps", value, 1, 1000)


@pytest.mark.parametrize("value, expected", [(1, 1), (1000, 1000), (7.0, 7), ("12", 12), (True, 1)])
def test_good_whole_numbers_come_back_as_int(value, expected):
    out = check_int("steps", value, 1, 1000)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.1, 1.1, "eta", None])
def test_bad_floats_are_refused(value):
    with pytest.raises(ValueError, match=r"eta must be a number in \[0, 1\]"):
        check_float("eta", value, 0.0, 1.0)


def test_seeds_are_whole_numbers_in_the_generator_range():
    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX
    for bad in (-1, SEED_MAX + 1, 10**30, 0.5):
        with pytest.raises(ValueError, match="seed must be a whole number"):
            check_seed(bad)


@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(),
                 st.none()))
def test_check_int_returns_an_int_in_range_or_refuses(value):
    try:
        out = check_int("n", value, -50, 50)
    except ValueError as e:
        assert str(e).startswith("n must be a whole number in -50..50")
    else:
        assert type(out) is int and -50 <= out <= 50
