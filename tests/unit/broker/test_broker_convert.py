"""Pure conversions from both client libraries' objects to reconciler.model.actual values."""

from __future__ import annotations

import datetime as dt
import math
import sys

import ib_async
import ib_insync
import pytest

from reconciler.broker import convert
from reconciler.broker.errors import SnapshotError
from reconciler.model.actual import Position

LIBS = [ib_async, ib_insync]
UTC = dt.UTC


@pytest.fixture(params=LIBS, ids=lambda m: m.__name__)
def lib(request):
    return request.param


def details(lib, *, con_id=756733, symbol="VTI", exchange="SMART", primary="ARCA", **extra):
    contract = lib.Contract(
        conId=con_id,
        symbol=symbol,
        secType="STK",
        exchange=exchange,
        primaryExchange=primary,
        currency="USD",
    )
    return lib.ContractDetails(contract=contract, **extra)


def test_contract_info_keeps_tick_hours_and_smart_routing(lib):
    d = details(
        lib,
        minTick=0.01,
        sizeIncrement=1.0,
        longName="VANGUARD TOTAL STOCK MKT ETF",
        timeZoneId="US/Eastern",
        tradingHours="20260102:0400-20260102:2000",
        liquidHours="20260102:0930-20260102:1600",
    )
    info = convert.contract_info(d, "SMART")
    assert (info.con_id, info.symbol, info.exchange, info.primary_exchange) == (
        756733,
        "VTI",
        "SMART",
        "ARCA",
    )
    assert info.min_tick == 0.01 and info.size_increment == 1.0
    assert info.time_zone_id == "US/Eastern"
    assert info.liquid_hours == "20260102:0930-20260102:1600"
    assert info.long_name.startswith("VANGUARD")


def test_contract_info_when_size_increment_is_unset_then_whole_units(lib):
    assert convert.contract_info(details(lib, minTick=0.01), "SMART").size_increment == 1.0
    fractional = details(lib, minTick=0.01, sizeIncrement=0.0001)
    assert convert.contract_info(fractional, "SMART").size_increment == 0.0001


def test_contract_info_when_pinned_exchange_then_it_is_kept(lib):
    info = convert.contract_info(details(lib, exchange="ARCA", minTick=0.01), "ARCA")
    assert info.exchange == "ARCA"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(-1.0, None), (0.0, None), (math.nan, None), (sys.float_info.max, None), (12.5, 12.5)],
)
def test_price_when_ib_sentinel_then_none(raw, expected):
    assert convert.price(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("BOT", "BUY"), ("SLD", "SELL"), ("BUY", "BUY")])
def test_side_normalises_execution_sides(raw, expected):
    assert convert.side(raw) == expected


def test_side_when_unknown_then_raises():
    with pytest.raises(ValueError, match="unknown order side"):
        convert.side("HOLD")


def test_to_utc_when_naive_then_read_in_the_gateway_zone():
    naive = dt.datetime(2026, 1, 2, 10, 30)
    assert convert.to_utc(naive, "America/New_York") == dt.datetime(2026, 1, 2, 15, 30, tzinfo=UTC)
    aware = dt.datetime(2026, 1, 2, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert convert.to_utc(aware) == dt.datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    assert convert.to_utc(None) is None


def test_position_from_ib_position(lib):
    contract = lib.Contract(conId=1, symbol="AAPL", secType="STK", currency="USD")
    pos = convert.position(lib.Position("DU0000001", contract, 20.0, 150.25))
    assert pos == Position("DU0000001", 1, "AAPL", "STK", "USD", 20.0, 150.25)


def make_ticker(lib, **fields):
    ticker = lib.Ticker()  # ib_async resets prices in __post_init__: set them afterwards
    for name, value in fields.items():
        setattr(ticker, name, value)
    return ticker


def test_quote_from_ticker_with_prices_has_utc_time_and_type(lib):
    received = dt.datetime(2026, 1, 2, 15, 0, tzinfo=UTC)
    ticker = make_ticker(lib, bid=99.9, ask=100.1, last=100.0, close=98.0, time=received)
    ticker.marketDataType = 3
    q = convert.quote(ticker, 7, "VTI")
    assert (q.bid, q.ask, q.last, q.close) == (99.9, 100.1, 100.0, 98.0)
    assert q.time == received and q.market_data_type == 3
    assert q.mid == pytest.approx(100.0)


def test_quote_when_no_price_arrived_then_prices_and_time_are_none(lib):
    ticker = make_ticker(lib, bid=-1.0, time=dt.datetime(2026, 1, 2, tzinfo=UTC))
    q = convert.quote(ticker, 7, "VTI")
    assert (q.bid, q.ask, q.last, q.close, q.time) == (None, None, None, None, None)
    assert q.reference_price is None


def trade(lib, *, status="Submitted", filled=0.0, remaining=None, qty=10, lmt=101.5):
    contract = lib.Contract(conId=7, symbol="VTI", secType="STK", currency="USD")
    order = lib.Order(
        orderId=5,
        clientId=17,
        permId=9001,
        action="BUY",
        totalQuantity=qty,
        orderType="LMT",
        lmtPrice=lmt,
        tif="DAY",
        account="DU0000001",
        orderRef="rc-p1-001",
    )
    st = lib.OrderStatus(orderId=5, status=status, filled=filled)
    if remaining is not None:
        st.remaining = remaining
    return lib.Trade(contract=contract, order=order, orderStatus=st)


def test_open_order_keeps_order_ref_and_remaining(lib):
    o = convert.open_order(trade(lib, filled=4, remaining=6))
    assert (o.order_ref, o.perm_id, o.client_id, o.order_id) == ("rc-p1-001", 9001, 17, 5)
    assert (o.side, o.quantity, o.filled, o.remaining) == ("BUY", 10, 4, 6)
    assert o.limit_price == 101.5 and o.signed_remaining == 6


def test_open_order_when_status_not_yet_received_then_remaining_is_not_zero(lib):
    o = convert.open_order(trade(lib, status="PreSubmitted", remaining=0))
    assert o.remaining == 10


def test_open_order_when_market_order_then_no_limit_price(lib):
    t = trade(lib, lmt=sys.float_info.max)
    t.order.orderType = "MKT"
    assert convert.open_order(t).limit_price is None


def fill(lib, *, exec_time, commission=None):
    contract = lib.Contract(conId=7, symbol="VTI", secType="STK", currency="USD")
    execution = lib.Execution(
        execId="0001.01",
        time=exec_time,
        acctNumber="DU0000001",
        side="SLD",
        shares=3.0,
        price=250.5,
        permId=9001,
        orderId=5,
        orderRef="rc-p1-001",
    )
    report = lib.CommissionReport()
    if commission is not None:
        report = lib.CommissionReport(execId="0001.01", commission=commission, currency="USD")
    return lib.Fill(contract, execution, report, exec_time)


def test_execution_from_fill_with_commission(lib):
    f = fill(lib, exec_time=dt.datetime(2026, 1, 2, 15, 30, tzinfo=UTC), commission=1.0)
    e = convert.execution(f)
    assert (e.exec_id, e.side, e.shares, e.price, e.order_ref) == (
        "0001.01",
        "SELL",
        3.0,
        250.5,
        "rc-p1-001",
    )
    assert e.commission == 1.0 and e.commission_currency == "USD"
    assert e.time.tzinfo is not None and e.time.utcoffset() == dt.timedelta(0)


def test_execution_when_commission_not_reported_then_none(lib):
    e = convert.execution(fill(lib, exec_time=dt.datetime(2026, 1, 2, 15, 30)), None, "UTC")
    assert e.commission is None and e.commission_currency is None


def test_execution_when_report_arrives_separately_then_it_is_used(lib):
    f = fill(lib, exec_time=dt.datetime(2026, 1, 2, 15, 30, tzinfo=UTC))
    report = lib.CommissionReport(execId="0001.01", commission=0.35, currency="USD")
    assert convert.execution(f, report).commission == 0.35


def test_completed_order_from_trade(lib):
    t = trade(lib, status="Filled")
    t.order.filledQuantity = 10
    c = convert.completed_order(t)
    assert (c.perm_id, c.status, c.filled, c.order_ref) == (9001, "Filled", 10, "rc-p1-001")


# ---------------------------------------------------------------- account values


def values(lib, account="DU0000001", overrides=None):
    rows = {
        ("NetLiquidation", "USD"): "155000.00",
        ("TotalCashValue", "USD"): "100000.00",
        ("TotalCashBalance", "USD"): "100000.00",
        ("TotalCashBalance", "EUR"): "1000.00",
        ("TotalCashBalance", "BASE"): "101080.00",
        ("ExchangeRate", "USD"): "1.00",
        ("ExchangeRate", "EUR"): "1.08",
        ("GrossPositionValue", "USD"): "55000.00",
        ("BuyingPower", "USD"): "404320.00",
        ("AvailableFunds", "USD"): "101080.00",
    }
    rows.update(overrides or {})
    return [
        lib.AccountValue(account, tag, value, currency, "")
        for (tag, currency), value in rows.items()
        if value is not None
    ]


HELD = [Position("DU0000001", 7, "VTI", "STK", "USD", 100.0, 240.0)]


def test_account_state_reads_nav_cash_by_currency_fx_and_margin(lib):
    state = convert.account_state("DU0000001", values(lib), HELD)
    assert state.base_currency == "USD" and state.net_liquidation == 155000
    assert state.cash == {"EUR": 1000.0, "USD": 100000.0}
    assert state.fx_rates == {"EUR": 1.08, "USD": 1.0}
    assert state.total_cash == 100000.0
    assert (state.gross_position_value, state.buying_power, state.available_funds) == (
        55000.0,
        404320.0,
        101080.0,
    )
    assert state.positions == tuple(HELD)
    assert state.to_base(100, "EUR") == pytest.approx(108)


def test_account_state_ignores_other_accounts_and_flat_positions(lib):
    other = values(lib, account="DU0000002", overrides={("NetLiquidation", "USD"): "1.00"})
    flat = Position("DU0000001", 8, "BND", "STK", "USD", 0.0, 70.0)
    state = convert.account_state("DU0000001", values(lib) + other, [*HELD, flat])
    assert state.net_liquidation == 155000 and state.positions == tuple(HELD)


def test_account_state_when_nav_missing_then_snapshot_error(lib):
    with pytest.raises(SnapshotError, match="NetLiquidation"):
        convert.account_state(
            "DU0000001", values(lib, overrides={("NetLiquidation", "USD"): None}), []
        )


def test_account_state_when_fx_rate_missing_for_held_cash_then_snapshot_error(lib):
    rows = values(lib, overrides={("ExchangeRate", "EUR"): None})
    with pytest.raises(SnapshotError, match="exchange rate EUR->USD"):
        convert.account_state("DU0000001", rows, HELD)


def test_account_state_when_cash_missing_then_snapshot_error_not_zero(lib):
    rows = values(
        lib,
        overrides={
            ("TotalCashBalance", "USD"): None,
            ("TotalCashBalance", "EUR"): None,
            ("TotalCashBalance", "BASE"): None,
        },
    )
    with pytest.raises(SnapshotError, match="cash balances"):
        convert.account_state("DU0000001", rows, HELD)


def test_account_state_when_several_problems_then_all_are_named(lib):
    rows = values(
        lib, overrides={("BuyingPower", "USD"): None, ("GrossPositionValue", "USD"): "N/A"}
    )
    with pytest.raises(SnapshotError) as caught:
        convert.account_state("DU0000001", rows, HELD)
    assert any("BuyingPower" in p for p in caught.value.problems)
    assert any("GrossPositionValue" in p for p in caught.value.problems)


def test_account_state_when_no_positions_but_gross_position_value_then_snapshot_error_not_flat(
    lib,
):
    with pytest.raises(SnapshotError, match=r"positions report is empty.*never read as flat"):
        convert.account_state("DU0000001", values(lib), [])


def test_account_state_when_no_positions_and_no_gross_position_value_then_flat(lib):
    rows = values(lib, overrides={("GrossPositionValue", "USD"): "0.00"})
    assert convert.account_state("DU0000001", rows, []).positions == ()


def test_account_state_when_model_code_values_then_ignored(lib):
    rows = [*values(lib), lib.AccountValue("DU0000001", "NetLiquidation", "1", "USD", "MODEL1")]
    assert convert.account_state("DU0000001", rows, HELD).net_liquidation == 155000
