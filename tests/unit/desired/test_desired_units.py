"""Units of the desired-state language: percent, weight, spread and duration spellings."""

from __future__ import annotations

import pytest

from reconciler.desired.units import (
    format_duration,
    parse_duration,
    parse_percent,
    parse_spread,
    parse_weight,
)


@pytest.mark.parametrize(
    ("text", "fraction"), [("55%", 0.55), ("0%", 0.0), ("12.5%", 0.125), ("100%", 1.0)]
)
def test_percent_is_stored_as_a_fraction(text, fraction):
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["55", 55, "55 %", "-5%", "5.%", "%", "1e2%", None])
def test_percent_without_the_percent_spelling_is_refused(text):
    with pytest.raises(ValueError, match="not a percentage"):
        parse_percent(text)


@pytest.mark.parametrize(
    ("value", "fraction"), [("55%", 0.55), (0.55, 0.55), (1, 1.0), (0.05, 0.05)]
)
def test_weight_accepts_percent_or_bare_fraction(value, fraction):
    assert parse_weight(value) == pytest.approx(fraction)


def test_bare_weight_above_one_suggests_the_percent_spelling():
    with pytest.raises(ValueError, match=r"did you mean 55%\?"):
        parse_weight(55)


@pytest.mark.parametrize("value", [True, -0.1, "abc"])
def test_weight_that_is_not_a_weight_is_refused(value):
    with pytest.raises(ValueError):
        parse_weight(value)


@pytest.mark.parametrize(
    ("text", "fraction"), [("1%", 0.01), ("50bps", 0.005), ("2.5bps", 0.00025)]
)
def test_spread_accepts_percent_or_basis_points(text, fraction):
    assert parse_spread(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["50", "50 bps", "50bp", 0.01])
def test_spread_in_another_spelling_is_refused(text):
    with pytest.raises(ValueError, match="not a spread"):
        parse_spread(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120s", 120), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400), ("1.5h", 5400)],
)
def test_duration_is_stored_in_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["120", 120, "2 minutes", "m5", "5M", "", "1h 30m"])
def test_duration_without_a_unit_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (120, "2m"), (0.25, "250ms")])
def test_format_duration_reads_back_to_the_same_seconds(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
