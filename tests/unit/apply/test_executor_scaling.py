"""Pure helpers of execution: slippage and cash-driven scaling of buys."""

from reconciler.apply.executor import scale_buys_to_cash, slippage_bps
from reconciler.model.plan import PlannedOrder


def buy(leg, qty, price, con_id=1):
    return PlannedOrder(
        leg=leg,
        account="DU0000001",
        key=f"S{con_id}",
        symbol=f"S{con_id}",
        con_id=con_id,
        sec_type="STK",
        exchange="SMART",
        primary_exchange="ARCA",
        currency="USD",
        side="BUY",
        quantity=qty,
        order_type="LMT",
        limit_price=price,
        time_in_force="DAY",
        ttl_seconds=60,
        outside_rth=False,
        arrival_price=price,
        est_notional=qty * price,
        est_commission=1.0,
        reason="test",
    )


def test_slippage_of_a_buy_filled_above_arrival_is_a_positive_cost():
    assert slippage_bps("BUY", 100.0, 100.05) == 5.0


def test_slippage_of_a_sell_filled_below_arrival_is_a_positive_cost():
    assert slippage_bps("SELL", 100.0, 99.9) == 10.0


def test_slippage_without_fill_or_arrival_is_unknown():
    assert slippage_bps("BUY", None, 10.0) is None
    assert slippage_bps("BUY", 10.0, None) is None


def test_scale_buys_when_no_shortfall_then_unchanged():
    buys = [buy(1, 10, 100.0)]
    assert scale_buys_to_cash(buys, 0.0, {1: 1.0}) == (buys, [])


def test_scale_buys_when_sells_raised_less_then_buys_shrink_in_whole_shares():
    buys = [buy(1, 10, 100.0, 1), buy(2, 20, 50.0, 2)]  # 2,000 of buys
    scaled, notes = scale_buys_to_cash(buys, 500.0, {1: 1.0, 2: 1.0})  # factor 0.75
    assert [b.quantity for b in scaled] == [7.0, 15.0]
    assert sum(b.est_notional for b in scaled) <= 1500.0
    assert notes and "0.750" in notes[0]


def test_scale_buys_when_shortfall_exceeds_buys_then_nothing_is_bought():
    scaled, _ = scale_buys_to_cash([buy(1, 10, 100.0)], 5000.0, {1: 1.0})
    assert scaled == []
