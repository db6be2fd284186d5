"""The simulated book: matching, commissions, buying power, average cost, state."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.sim.book import (
    Book,
    BookError,
    CommissionSchedule,
    SimOrder,
    fill_quantity,
    marketable_price,
)
from reconciler.sim.market import Universe, builtin_universe
from reconciler.sim.prices import PriceModel, Quote
from reconciler.sim.requests import ContractSpec, OrderRequest

NOW = dt.datetime(2026, 1, 12, 15, 0, tzinfo=dt.UTC)
QUOTE = Quote(bid=99.98, ask=100.02, last=100.0, close=100.0)


def order(action="BUY", order_type="MKT", lmt=None, qty=10.0) -> SimOrder:
    return SimOrder(
        perm_id=1,
        client_id=1,
        order_id=1,
        account="DU0000001",
        con_id=1,
        action=action,
        total_quantity=qty,
        order_type=order_type,
        lmt_price=lmt,
        tif="DAY",
        outside_rth=False,
        order_ref="",
        created_at=NOW.isoformat(),
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (("BUY", "MKT", None), 100.02),
        (("SELL", "MKT", None), 99.98),
        (("BUY", "LMT", 100.02), 100.02),
        (("BUY", "LMT", 100.01), None),
        (("SELL", "LMT", 99.98), 99.98),
        (("SELL", "LMT", 99.99), None),
        (("BUY", "MIDPRICE", None), 100.0),
        (("BUY", "MIDPRICE", 99.99), None),
        (("SELL", "MIDPRICE", 99.99), 100.0),
    ],
)
def test_marketable_price(spec, expected):
    assert marketable_price(order(*spec), QUOTE, None) == expected


def test_fill_quantity_is_capped_by_liquidity_in_whole_increments():
    assert fill_quantity(100, None, 1) == 100
    assert fill_quantity(100, 30, 1) == 30
    assert fill_quantity(10, 30, 1) == 10
    assert fill_quantity(7.5, None, 1) == 7


@pytest.mark.parametrize(
    ("shares", "value", "fee"),
    [
        (10, 2300.0, 1.0),  # minimum
        (1000, 22000.0, 5.0),  # per share
        (10, 50.0, 0.5),  # capped at 1% of value
    ],
)
def test_fixed_commission(shares, value, fee):
    assert CommissionSchedule().for_quantity(shares, value) == fee


@pytest.fixture
def book():
    universe = Universe(builtin_universe())
    b = Book(universe, PriceModel(universe))
    b.add_account("DU0000001", {"USD": 10_000.0})
    return b


def request(symbol="VTI", action="BUY", qty=10.0, order_type="MKT", lmt=None, order_id=1):
    return OrderRequest(
        order_id=order_id,
        contract=ContractSpec(0, symbol, "STK", "SMART", "", "USD"),
        action=action,
        total_quantity=qty,
        order_type=order_type,
        lmt_price=lmt,
        aux_price=None,
        tif="DAY",
        account="DU0000001",
        order_ref="r",
        transmit=True,
        parent_id=0,
        outside_rth=False,
    )


def test_place_when_cash_is_short_then_rejected_with_201(book):
    with pytest.raises(BookError) as err:
        book.place(1, request(qty=100), NOW, ["DU0000001"])
    assert err.value.code == 201


def test_place_when_open_buys_reserve_the_cash_then_next_buy_is_rejected(book):
    book.place(1, request(qty=20, order_type="LMT", lmt=250.0), NOW, ["DU0000001"])
    with pytest.raises(BookError):
        book.place(1, request(qty=20, order_type="LMT", lmt=250.0, order_id=2), NOW, ["DU0000001"])


def test_place_when_selling_unheld_shares_in_cash_account_then_rejected(book):
    with pytest.raises(BookError, match="SHORT SALES"):
        book.place(1, request(action="SELL"), NOW, ["DU0000001"])


def test_place_when_price_off_tick_then_error_110(book):
    with pytest.raises(BookError) as err:
        book.place(1, request(order_type="LMT", lmt=100.001), NOW, ["DU0000001"])
    assert err.value.code == 110


def test_fill_updates_cash_position_and_average_cost_with_commission(book):
    placed, _ = book.place(1, request(qty=10), NOW, ["DU0000001"])
    fill = book.try_fill(placed, NOW)
    assert fill.execution.price == 290.01 and fill.execution.commission == 1.0
    account = book.accounts["DU0000001"]
    assert account.cash["USD"] == pytest.approx(10_000 - 2900.1 - 1.0)
    holding = account.holdings[placed.con_id]
    assert holding.quantity == 10
    assert holding.avg_cost == pytest.approx((2900.1 + 1.0) / 10)
    assert placed.status == "Filled"


def test_sell_realizes_pnl_net_of_commission(book):
    vti = book.universe.by_symbol("VTI")[0]
    book.set_position("DU0000001", vti.con_id, 10, 250.0)
    placed, _ = book.place(1, request(action="SELL", qty=4), NOW, ["DU0000001"])
    fill = book.try_fill(placed, NOW)
    assert fill.execution.realized_pnl == pytest.approx((289.99 - 250.0) * 4 - 1.0)
    assert book.accounts["DU0000001"].holdings[vti.con_id].quantity == 6


def test_perm_ids_and_exec_ids_are_unique(book):
    book.accounts["DU0000001"].cash["USD"] = 1e7
    perms, execs = set(), set()
    for i in range(1, 21):
        placed, _ = book.place(1, request(qty=1, order_id=i), NOW, ["DU0000001"])
        perms.add(placed.perm_id)
        execs.add(book.try_fill(placed, NOW).execution.exec_id)
    assert len(perms) == 20 and len(execs) == 20 and 0 not in perms


def test_state_round_trip_keeps_accounts_orders_executions_and_ids(book):
    placed, _ = book.place(1, request(qty=5), NOW, ["DU0000001"])
    book.try_fill(placed, NOW)
    resting, _ = book.place(
        1, request(qty=1, order_type="LMT", lmt=100.0, order_id=2), NOW, ["DU0000001"]
    )
    state = book.to_state()
    universe = Universe(builtin_universe())
    restored = Book(universe, PriceModel(universe))
    restored.load_state(state)
    assert restored.to_state() == state
    assert restored.find(1, 2).perm_id == resting.perm_id
    assert restored.next_order_id(1) == 3


def test_state_round_trip_keeps_whether_a_working_order_was_acknowledged_and_may_fill(book):
    acked, _ = book.place(1, request(qty=1, order_type="LMT", lmt=100.0), NOW, ["DU0000001"])
    book.acknowledge(acked, open_now=True)
    book.make_eligible(acked)
    pending, _ = book.place(
        1, request(qty=1, order_type="LMT", lmt=100.0, order_id=2), NOW, ["DU0000001"]
    )
    universe = Universe(builtin_universe())
    restored = Book(universe, PriceModel(universe))
    restored.load_state(book.to_state())
    again, waiting = restored.find(1, 1), restored.find(1, 2)
    assert (again.acknowledged, again.eligible, again.status) == (True, True, "Submitted")
    assert (waiting.acknowledged, waiting.eligible) == (False, False)
    assert [o.perm_id for o in restored.working_orders()] == [acked.perm_id, pending.perm_id]


def test_state_from_before_latency_was_saved_loads_its_working_orders(book):
    resting, _ = book.place(1, request(qty=1, order_type="LMT", lmt=100.0), NOW, ["DU0000001"])
    state = book.to_state()
    for data in state["orders"]:
        del data["acknowledged"], data["eligible"]
    universe = Universe(builtin_universe())
    restored = Book(universe, PriceModel(universe))
    restored.load_state(state)
    assert [o.perm_id for o in restored.working_orders()] == [resting.perm_id]
