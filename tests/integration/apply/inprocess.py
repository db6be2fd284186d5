"""Builders for the in-process apply tests: a one-account simulator scenario, planned orders
priced from the simulator's own quotes, a plan around them, and a gateway journal that notes
what the ledger held when each placeOrder arrived.

Responsible for values and one observer; must not drive the executor or recovery (the tests
do) and must not wait on anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.model.plan import AccountPlan, Plan, PlannedOrder
from reconciler.sim.journal import Journal

ACCOUNT = "DU0000001"
PLACE_ORDER = 3  # incoming TWS message id
EXECUTION_DATA = 11  # outgoing TWS message id (execDetails)
COMMISSION_REPORT = 59  # outgoing TWS message id
PLAN_TIME = dt.datetime(2026, 1, 7, 17, 0, tzinfo=dt.UTC)


def scenario(
    *,
    holdings: Mapping[str, float] | None = None,
    liquidity: Mapping[str, float] | None = None,
    fill_interval: float = 0.05,
    faults: Mapping[str, object] | None = None,
) -> dict:
    """One cash account with fixed prices (no volatility), always open; `liquidity` caps the
    shares per fill of some symbols (thin books fill in parts, one part per market tick every
    `fill_interval` seconds, the first as soon as the order is acknowledged)."""
    return {
        "name": "apply-inprocess",
        "seed": 1,
        "accounts": [
            {
                "id": ACCOUNT,
                "type": "cash",
                "cash": {"USD": 100_000},
                "positions": [
                    {"symbol": s, "quantity": q, "avgCost": 50} for s, q in (holdings or {}).items()
                ],
            }
        ],
        "instruments": [{"symbol": s, "liquidity": n} for s, n in (liquidity or {}).items()],
        "market": {"volatility": 0, "fillInterval": fill_interval},
        "faults": dict(faults or {}),
    }


def planned(
    sim,
    symbol: str,
    side: str,
    quantity: float,
    *,
    leg: int,
    limit_price: float | None = None,
    ttl_seconds: float = 30.0,
) -> PlannedOrder:
    """A planned order for the simulator's instrument: MKT, or LMT at `limit_price`; valued
    at the simulator's current quote as the planner would."""
    inst = sim.instrument(symbol)
    quote = sim.quote(symbol)
    arrival = quote.ask if side == "BUY" else quote.bid
    price = limit_price or arrival
    return PlannedOrder(
        leg=leg,
        account=ACCOUNT,
        key=symbol,
        symbol=symbol,
        con_id=inst.con_id,
        sec_type="STK",
        exchange="SMART",
        primary_exchange=inst.primary_exchange,
        currency=inst.currency,
        side=side,
        quantity=quantity,
        order_type="LMT" if limit_price is not None else "MKT",
        limit_price=limit_price,
        time_in_force="DAY",
        ttl_seconds=ttl_seconds,
        outside_rth=False,
        arrival_price=arrival,
        est_notional=round(quantity * price, 2),
        est_commission=1.0,
        reason=f"{symbol}: test",
    )


def plan_of(orders: Iterable[PlannedOrder], plan_id: str = "p1") -> Plan:
    """A plan holding exactly `orders` for the one account (legs as given)."""
    orders = tuple(orders)
    return Plan(
        plan_id=plan_id,
        created_at=PLAN_TIME,
        desired_hash="d" * 64,
        git_commit=None,
        git_dirty=None,
        actual_fingerprint="f" * 64,
        fingerprint_parts={},
        snapshot_time=PLAN_TIME,
        quotes={},
        nav={ACCOUNT: 100_000.0},
        accounts=(
            AccountPlan(
                account=ACCOUNT,
                portfolio="test",
                risk_policy="test",
                base_currency="USD",
                net_liquidation=100_000.0,
                capital=100_000.0,
                drift=(),
                orders=orders,
                decisions=(),
            ),
        ),
    )


@dataclass(frozen=True)
class Arrival:
    """One placeOrder as it reached the gateway, and the ledger at that moment."""

    client_id: int | None
    order_ref: str
    ledger: Mapping[str, tuple[str, ...]]  # orderRef -> its event kinds, oldest first


class LedgerAtPlaceOrder(Journal):
    """The simulator's message journal, which also reads the store each time a placeOrder
    arrives. The simulator, the client and the executor share one event loop, so the read
    sees exactly what the executor had committed before its order reached the gateway."""

    def __init__(self, store) -> None:
        super().__init__(None)
        self.store = store
        self.arrivals: list[Arrival] = []

    def record(self, direction, client_id, fields, at) -> None:
        super().record(direction, client_id, fields, at)
        if direction == "in" and self[-1]["msg_id"] == PLACE_ORDER:
            [ref] = [f for f in fields if f.startswith("rc-")]
            ledger = {
                o.order_ref: tuple(e.kind for e in self.store.order_events(o.order_ref))
                for o in self.store.list_orders(limit=1000)
            }
            self.arrivals.append(Arrival(client_id, ref, ledger))


def kinds(store, order_ref: str) -> list[str]:
    return [e.kind for e in store.order_events(order_ref)]
