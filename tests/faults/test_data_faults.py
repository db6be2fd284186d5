"""Fault catalogue: the data a cycle decides from is missing or poor (an empty position
report for an account that holds positions, no market data, delayed data only, stale quotes).

Each test runs `reconcile apply` as a subprocess against the simulator and ends with the
shared invariants of both ledger and broker (tests/faults/invariants.py).
"""

from __future__ import annotations

import json

import pytest

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}


def test_fault_empty_position_report_for_an_account_with_positions_is_never_read_as_flat(
    world, faulty
):
    """Fault: reqPositions reports nothing for an account whose account values show 1,460 USD
    of positions (`emptyPositions`). Guarantee: the snapshot is refused (exit 1, naming the
    contradiction); nothing is planned as if the account were flat and no order is sent."""
    w = world(faulty(HOLDINGS, {"emptyPositions": ["DU0000001"]}), TARGETS)

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 1, result.explain()
    assert "position" in result.stderr.lower() and "flat" in result.stderr, result.explain()
    ledger, broker = w.safe(positions=HOLDINGS)
    assert broker.placed_refs == () and ledger.orders == {}


QUOTE_FAULTS = {
    "354-no-market-data": {"noMarketData": ["VEA"]},
    "stale-quotes": {"staleQuotes": ["VEA"]},
}


@pytest.mark.parametrize("fault", list(QUOTE_FAULTS))
def test_fault_instrument_without_a_usable_quote_is_not_traded_and_the_rest_proceeds(
    fault, world, faulty
):
    """Fault: VEA has no market data (error 354) or only a stale quote (close, no bid/ask).
    Guarantee: no order is priced without a fresh quote: VEA is denied with a reason, the
    other instruments trade, nothing is sent for VEA."""
    w = world(faulty(HOLDINGS, QUOTE_FAULTS[fault]), TARGETS)

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 0, result.explain()
    report = json.loads(result.stdout)
    assert {o["key"] for o in report["orders"]} == {"BND", "VWO"}, report["orders"]
    assert any(d.get("key") == "VEA" for d in report.get("denials", [])), report.get("denials")
    ledger, _ = w.safe(positions={"BND": 10, "VWO": 10})
    assert {o.symbol for o in ledger.orders.values()} == {"BND", "VWO"}


def test_fault_delayed_market_data_only_is_never_taken_for_live_prices(world, faulty):
    """Fault: the account has no live subscription: warning 10167 and delayed ticks
    (`delayedOnly`). Guarantee: delayed prices are not used to trade: nothing is sent
    and the apply says why (exit 4, drift not closed)."""
    w = world(faulty(HOLDINGS, {"delayedOnly": True}), TARGETS)

    result = w.cli.finish(w.cli.apply("--format", "json"))

    assert result.returncode == 4, result.explain()
    _, broker = w.safe(positions=HOLDINGS)
    assert [r for r in broker.placed_refs if r] == []
