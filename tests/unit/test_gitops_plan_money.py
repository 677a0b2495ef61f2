"""The hourly cost line of `emd gitops plan` names a currency on both sides, nothing deployed included."""

from __future__ import annotations

from emd_cli.gitops import _money


def test_nothing_deployed_costs_zero_in_the_currency_of_the_other_side() -> None:
    assert _money({}, {"$": 0.736}) == "$0.00"
    assert _money({"$": 0.736}, {}) == "$0.74"
    assert _money({}, {"$": 1.0, "¥": 6.18}) == "$0.00 + ¥0.00"
    assert _money({}, {}) == "0.00"
