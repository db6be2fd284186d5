"""The one copy of each value rule in `reconciler.model`: instrument key, FX rate, held and
in-flight quantities, and which accounts a cycle works on."""

from __future__ import annotations

import math

import pytest
from builders import Book, desired_of, portfolio, target

from reconciler.cycle.common import CycleError, selected_accounts
from reconciler.decide.planner import PlanningError, build_plan
from reconciler.model.actual import in_flight_by_con_id
from reconciler.model.desired import Instrument, UnknownAccountError
from reconciler.model.instrument import instrument_key


@pytest.mark.parametrize(
    ("symbol", "sec_type", "currency", "key"),
    [
        ("VTI", "STK", "USD", "VTI"),
        ("SAP", "STK", "EUR", "SAP:STK:EUR"),
        ("ES", "FUT", "USD", "ES:FUT:USD"),
    ],
)
def test_the_instrument_key_is_the_symbol_only_for_a_us_stock(symbol, sec_type, currency, key):
    assert instrument_key(symbol, sec_type, currency) == key
    assert Instrument(symbol, sec_type=sec_type, currency=currency).key == key
    book = Book().quote_only(symbol, price=10.0, currency=currency)
    assert book.contract_of(symbol).key == instrument_key(symbol, "STK", currency)


def test_fx_rate_is_one_for_the_base_and_never_guessed_for_others():
    account = Book(fx={"EUR": 1.1, "JPY": math.nan, "GBP": 0.0}).account_state()
    assert account.fx_rate("USD") == 1.0
    assert account.fx_rate("EUR") == 1.1
    assert [account.fx_rate(c) for c in ("JPY", "GBP", "CHF")] == [None, None, None]
    assert account.to_base(100.0, "EUR") == pytest.approx(110.0)
    with pytest.raises(KeyError):
        account.to_base(100.0, "JPY")


def test_held_and_in_flight_quantities_are_summed_per_instrument():
    book = Book().hold("VTI", 10, price=100.0).hold("BND", -5, price=50.0)
    book.open_order("VTI", "BUY", 4).open_order("VTI", "SELL", 1).open_order("BND", "BUY", 5)
    vti, bnd = book.contract_of("VTI").con_id, book.contract_of("BND").con_id
    assert book.account_state().held_by_con_id() == {vti: 10, bnd: -5}
    assert in_flight_by_con_id(book.open_orders) == {vti: 3, bnd: 5}


# ---------------------------------------------------------------- account selection

DESIRED = desired_of(
    portfolio(target("VTI", weight=0.5), account="DU0000001", name="one"),
    portfolio(target("VTI", weight=0.5), account="DU0000002", name="two"),
)


@pytest.mark.parametrize("accounts", [None, [], ()])
def test_no_account_filter_selects_every_portfolio(accounts):
    assert [p.name for p in DESIRED.portfolios_for(accounts)] == ["one", "two"]
    assert selected_accounts(DESIRED, accounts) == ["DU0000001", "DU0000002"]


def test_selected_accounts_keep_desired_state_order_and_appear_once():
    asked = ["DU0000002", "DU0000001", "DU0000002"]
    assert [p.name for p in DESIRED.portfolios_for(asked)] == ["one", "two"]
    assert selected_accounts(DESIRED, asked) == ["DU0000001", "DU0000002"]


def test_an_account_without_a_portfolio_is_refused_by_name_everywhere():
    message = r"DU0000009.*desired state has DU0000001, DU0000002"
    with pytest.raises(UnknownAccountError, match=message):
        DESIRED.portfolios_for(["DU0000001", "DU0000009"])
    with pytest.raises(CycleError, match=message):
        selected_accounts(DESIRED, ["DU0000009"])
    book = Book("DU0000001").quote_only("VTI", price=100.0)
    with pytest.raises(PlanningError, match=message):
        build_plan(
            DESIRED,
            book.actual(),
            book.resolved(),
            {},
            now=book.now,
            plan_id="p",
            accounts=["DU0000009"],
        )
