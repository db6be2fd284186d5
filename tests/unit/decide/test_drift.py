"""Diff: the drift table and the band rules."""

from __future__ import annotations

import pytest
from builders import Book, portfolio, target

from reconciler.decide.drift import (
    drift_table,
    quantity_in_band,
    weight_in_band,
)
from reconciler.decide.planner import capital_for
from reconciler.model.desired import Band


def rows_of(book: Book, p, capital: float | None = None):
    account = book.account_state()
    cap = capital if capital is not None else capital_for(p, account)
    return {r.key: r for r in drift_table(p, account, book.actual(), book.resolved(), cap)}


# ---------------------------------------------------------------- drift table


def test_drift_row_shows_quantity_price_value_weights_and_drift():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)  # NAV 10000
    row = rows_of(book, portfolio(target("VTI", weight=0.55)))["VTI"]
    assert (row.quantity, row.price, row.market_value) == (40, 100.0, 4000.0)
    assert row.current_weight == pytest.approx(0.40)
    assert row.target_weight == 0.55
    assert row.target_quantity == pytest.approx(55.0)
    assert row.drift == pytest.approx(-0.15)
    assert row.status == "managed" and row.in_band is False


def test_drift_row_values_foreign_holdings_in_base_currency():
    book = Book(cash=0, fx={"EUR": 1.10}).hold("SAP", 10, price=100.0, currency="EUR")
    row = rows_of(book, portfolio(target("SAP", weight=1.0, currency="EUR")))["SAP:STK:EUR"]
    assert row.market_value == pytest.approx(1100.0)
    assert row.current_weight == pytest.approx(1.0)


def test_drift_row_weights_are_of_fixed_capital_when_set():
    book = Book(cash=90_000).hold("VTI", 50, price=100.0)
    row = rows_of(book, portfolio(target("VTI", weight=0.5), capital=10_000))["VTI"]
    assert row.current_weight == pytest.approx(0.5)
    assert row.in_band


def test_holdings_not_targeted_are_listed_as_unmanaged():
    book = Book().hold("VTI", 10, price=100.0).hold("GME", 5, price=20.0)
    rows = rows_of(book, portfolio(target("VTI", weight=0.01)))
    assert rows["GME"].status == "unmanaged"
    assert rows["GME"].target_weight is None
    assert rows["GME"].in_band is True  # unmanaged: ignore


def test_unmanaged_holding_under_liquidate_is_out_of_band_with_target_zero():
    book = Book().hold("GME", 5, price=20.0)
    row = rows_of(book, portfolio(unmanaged="liquidate"))["GME"]
    assert (row.target_weight, row.target_quantity, row.in_band) == (0.0, 0.0, False)


def test_open_orders_are_shown_in_flight_and_count_towards_the_band():
    book = Book(cash=6_000).hold("VTI", 40, price=100.0)
    book.open_order("VTI", "BUY", 15, limit_price=100.0)
    row = rows_of(book, portfolio(target("VTI", weight=0.55)))["VTI"]
    assert row.in_flight == 15
    assert row.current_weight == pytest.approx(0.40)  # what is held
    assert row.in_band is True  # what will be held: the gap is already being closed


def test_target_without_price_is_marked_missing_price_not_zero():
    book = Book().hold("VTI", 10, price=None)
    row = rows_of(book, portfolio(target("VTI", weight=0.5)))["VTI"]
    assert row.status == "missing-price"
    assert row.market_value is None and row.current_weight is None
    assert row.in_band is False


def test_target_in_a_currency_without_fx_rate_is_marked_missing_fx():
    book = Book().quote_only("SAP", price=100.0, currency="EUR")
    row = rows_of(book, portfolio(target("SAP", weight=0.5, currency="EUR")))["SAP:STK:EUR"]
    assert row.status == "missing-fx"


def test_target_that_did_not_resolve_is_marked_unresolved():
    rows = rows_of(Book(), portfolio(target("NOPE", weight=0.1)))
    assert rows["NOPE"].status == "unresolved" and rows["NOPE"].con_id is None


def test_rows_list_targets_in_portfolio_order_then_unmanaged_by_key():
    book = Book().hold("ZZZ", 1, price=1.0).hold("AAA", 1, price=1.0).quote_only("VTI", 10.0)
    book.quote_only("BND", 10.0)
    p = portfolio(target("VTI", weight=0.1), target("BND", weight=0.1))
    account = book.account_state()
    keys = [r.key for r in drift_table(p, account, book.actual(), book.resolved(), 1000.0)]
    assert keys == ["VTI", "BND", "AAA", "ZZZ"]


# ---------------------------------------------------------------- bands


@pytest.mark.parametrize(
    ("current", "target_weight", "band", "inside"),
    [
        (0.54, 0.55, Band(absolute=0.01), True),
        (0.53, 0.55, Band(absolute=0.01), False),
        (0.50, 0.55, Band(relative=0.10), True),  # 10% of 55% = 5.5 pts
        (0.49, 0.55, Band(relative=0.10), False),
        (0.53, 0.55, Band(absolute=0.03, relative=0.02), False),  # outside the relative bound
        (0.55, 0.55, Band(), True),
        (0.5500001, 0.55, Band(), False),
        (0.001, 0.0, Band(relative=0.2), False),  # target 0 with only a relative band: exit
    ],
)
def test_weight_band_is_outside_when_outside_either_set_bound(current, target_weight, band,
                                                              inside):
    assert weight_in_band(current, target_weight, band) is inside


@pytest.mark.parametrize(
    ("quantity", "target_quantity", "band", "inside"),
    [
        (100, 100, Band(), True),
        (99, 100, Band(), False),
        (95, 100, Band(relative=0.05), True),
        (94, 100, Band(relative=0.05), False),
        (50, 100, Band(absolute=0.5), False),  # the absolute band is weight points: not used
    ],
)
def test_fixed_quantity_band_is_the_relative_band_of_the_quantity(quantity, target_quantity,
                                                                  band, inside):
    assert quantity_in_band(quantity, target_quantity, band) is inside
