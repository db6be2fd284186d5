"""Planner and executor size buys alike (hypothesis, 200 examples each).

A plan is made with plenty of cash; then sells are said to have raised less than planned.
The executor's `scale_buys_to_cash` must give exactly the buys the planner makes when it
only has the cash that is left, never spend more than that cash, and never break a size
increment or a minTradeNotional.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from builders import NOW, Book, limits, portfolio, target
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.apply.executor import scale_buys_to_cash
from reconciler.decide.planner import plan_account
from reconciler.decide.sizing import estimate_commission

AGREEMENT = settings(max_examples=200, deadline=None)
PLENTY = 1e9


@dataclasses.dataclass
class Case:
    """Instruments and quantity targets (so the plan does not depend on the cash)."""

    instruments: list[dict]
    eur_rate: float
    portfolio_fields: dict

    def book(self, cash: float) -> Book:
        book = Book(cash=cash, fx={"EUR": self.eur_rate})
        for spec in self.instruments:
            book.quote_only(
                spec["symbol"],
                spec["price"],
                currency=spec["currency"],
                size_increment=spec["increment"],
                min_tick=spec["tick"],
                spread_bps=spec["spread_bps"],
            )
        return book

    def plan(self, cash: float):
        book = self.book(cash)
        targets = [
            target(s["symbol"], quantity=s["quantity"], currency=s["currency"])
            for s in self.instruments
        ]
        p = portfolio(*targets, **self.portfolio_fields)
        return plan_account(
            p, limits(), book.account_state(), book.actual(), book.resolved(), now=NOW
        )

    def increments(self) -> dict[int, float]:
        book = self.book(0.0)
        return {book.contract_of(s["symbol"]).con_id: s["increment"] for s in self.instruments}


@st.composite
def cases(draw) -> Case:
    instruments = []
    for i in range(draw(st.integers(1, 6))):
        increment = draw(st.sampled_from([1.0, 1.0, 0.1, 0.01, 5.0, 25.0]))
        steps = draw(st.integers(1, 400))
        # Whole shares are multiples of every fractional increment; 5 and 25 take steps.
        quantity = float(steps) if increment <= 1 else increment * draw(st.integers(1, 40))
        instruments.append(
            {
                "symbol": f"S{i}",
                "price": draw(st.integers(100, 50_000)) / 100,
                "currency": draw(st.sampled_from(["USD", "USD", "EUR"])),
                "increment": increment,
                "tick": draw(st.sampled_from([0.01, 0.05])),
                "spread_bps": draw(st.sampled_from([1.0, 5.0, 40.0])),
                "quantity": quantity,
            }
        )
    fields = {
        "min_trade_notional": float(draw(st.sampled_from([0, 100, 500, 2_500]))),
        "execution": {
            "order_type": draw(st.sampled_from(["LMT", "MKT", "MIDPRICE"])),
            "limit_offset_bps": draw(st.sampled_from([0.0, 5.0, 25.0])),
        },
    }
    return Case(instruments, draw(st.sampled_from([1.1, 0.9])), fields)


def cost(orders) -> Decimal:
    return sum(
        (Decimal(repr(o.est_notional)) + Decimal(repr(o.est_commission)) for o in orders),
        Decimal(0),
    )


def without_leg(orders) -> list:
    return [dataclasses.replace(o, leg=0) for o in orders]


@AGREEMENT
@given(cases(), st.floats(0.0, 1.2))
def test_the_executors_scaled_buys_equal_the_planners_buys_with_the_cash_left(case, share):
    buys = case.plan(PLENTY).orders
    wanted = cost(buys)
    shortfall = (wanted * Decimal(repr(share))).quantize(Decimal("0.0001"))
    scaled, _ = scale_buys_to_cash(buys, float(shortfall), case.increments())
    planned_with_less = case.plan(float(wanted - shortfall))
    assert without_leg(scaled) == without_leg(planned_with_less.orders)


@AGREEMENT
@given(cases(), st.floats(0.0, 1e7, allow_nan=False))
def test_the_executors_scaled_buys_never_cost_more_than_the_cash_left(case, shortfall):
    buys = case.plan(PLENTY).orders
    scaled, notes = scale_buys_to_cash(buys, shortfall, case.increments())
    left = cost(buys) - Decimal(repr(shortfall))
    if shortfall > 0 and buys:
        assert cost(scaled) <= max(left, Decimal(0)) + Decimal("0.00005")  # budget to 0.0001
    else:
        assert scaled == list(buys) and notes == []


@AGREEMENT
@given(cases(), st.floats(0.0, 1e6, allow_nan=False))
def test_scaled_buys_keep_increments_min_trade_notional_and_a_fresh_commission(case, shortfall):
    buys = case.plan(PLENTY).orders
    increments = case.increments()
    scaled, _ = scale_buys_to_cash(buys, shortfall, increments)
    before = {o.leg: o for o in buys}
    for order in scaled:
        original = before[order.leg]
        step = Decimal(repr(increments[order.con_id]))
        assert 0 < order.quantity <= original.quantity
        assert Decimal(repr(order.quantity)) % step == 0
        assert order.min_trade_notional == original.min_trade_notional
        if order.quantity != original.quantity:
            # A scaled order's estimate must still clear minTradeNotional. An order the scaling
            # left alone keeps the planner's judgement, which is made at the reference price
            # (its estimate, at the tick-rounded limit, may be a tick's worth lower).
            assert order.est_notional >= order.min_trade_notional
            assert order.est_commission == estimate_commission(order.quantity, order.est_notional)


def test_the_strategy_makes_plans_that_the_executor_has_to_scale():
    """Guard against vacuous properties: real buys, some scaled, some dropped."""
    seen = {"buys": 0, "scaled": 0, "dropped": 0}

    @settings(max_examples=60, deadline=None, database=None)
    @given(cases(), st.floats(0.05, 0.9))
    def collect(case, share):
        buys = case.plan(PLENTY).orders
        scaled, _ = scale_buys_to_cash(buys, float(cost(buys)) * share, case.increments())
        seen["buys"] += len(buys)
        seen["scaled"] += sum(1 for o in scaled if o not in buys)
        seen["dropped"] += len(buys) - len(scaled)

    collect()
    assert seen["buys"] > 0 and seen["scaled"] > 0 and seen["dropped"] > 0
