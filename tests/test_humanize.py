"""Durations and costs as people read them."""

from __future__ import annotations

import pytest

from runner.humanize import cost


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.0, "$0"),
        (0.000042, "$0.000042"),
        (0.0001371, "$0.00014"),
        (0.005, "$0.005"),
        (0.0099, "$0.0099"),
        (0.01, "$0.01"),
        (0.256, "$0.26"),
        (1234.5, "$1,234.50"),
        (3e-9, "$0.000000003"),
    ],
)
def test_a_cost_shows_two_digits_below_a_cent_and_cents_above(usd: float, shown: str) -> None:
    assert cost(usd) == shown
