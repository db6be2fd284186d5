"""Fault catalogue: the connection to the gateway fails (drops around orders, IBKR's link lost
and restored with or without data, fills while the reconciler is away, a positions request
that never ends, pacing pressure).

Each test runs `reconcile apply` as a subprocess against the simulator and ends with the
shared invariants of both ledger and broker (tests/faults/invariants.py).
"""

from __future__ import annotations

import pytest
from apply_helpers import exited, open_market, placed_orders
from waiting import wait_until

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}  # one sell, then two buys


@pytest.mark.parametrize("k", [1, 2], ids=["before-the-first-ack", "after-2-orders"])
def test_fault_disconnect_after_kth_order_before_its_ack_then_rerun_recovers_it_and_converges(
    k, world, faulty
):
    """Fault: the gateway accepts the Kth placeOrder, then drops the connection before any
    acknowledgement (`dropAfterOrders: K`). Guarantee: the interrupted apply fails without
    claiming an outcome; the rerun finds the order by its orderRef (it filled at the broker),
    records its fill once, never resends it, and converges with no duplicate orderRef."""
    w = world(faulty(HOLDINGS, {"dropAfterOrders": k}), TARGETS)

    first = w.cli.finish(w.cli.apply())

    assert first.returncode != 0, first.explain()
    assert len(placed_orders(w.sim)) == k
    dropped = placed_orders(w.sim)[-1].order_ref
    rerun = w.cli.finish(w.cli.apply())
    assert rerun.returncode == 0, rerun.explain()
    ledger, broker = w.safe(positions=TARGETS)
    assert ledger.kinds_by_ref[dropped][-1] == "FILL", ledger.kinds_by_ref[dropped]
    assert broker.placed_refs.count(dropped) == 1


@pytest.mark.parametrize("restored", [1101, 1102], ids=["1101-data-lost", "1102-data-kept"])
def test_fault_connectivity_lost_while_orders_work_then_nothing_more_is_sent_and_the_next_cycle_starts_fresh(
    restored, world, faulty
):
    """Fault: IBKR's link drops (1100) while the apply's orders rest, then comes back with
    data lost (1101) or kept (1102). Guarantee: nothing more is sent over that session
    after 1100 (the buys are recorded NOT_SENT, the cycle `partial`), and the next apply takes
    a fresh snapshot and converges without sending any order twice."""
    w = world(faulty(HOLDINGS, closed=("BND",)), TARGETS)
    apply = w.cli.apply()
    wait_until(
        lambda: len(placed_orders(w.sim)) == 1, timeout=30, what="the sell", abort=exited(apply)
    )
    w.sim.call(w.sim.faults.lose_connectivity)
    w.sim.call(w.sim.faults.restore_connectivity, restored)
    open_market(w.sim)

    first = w.cli.finish(apply)

    assert first.returncode == 0, first.explain()
    assert "Cycle 1 partial" in first.stdout and first.stdout.count("NOT_SENT ") == 2, (
        first.explain()
    )
    assert len(placed_orders(w.sim)) == 1, "orders were sent after 1100"
    rerun = w.cli.finish(w.cli.apply())
    assert rerun.returncode == 0, rerun.explain()
    w.safe(positions=TARGETS)


def test_fault_fills_while_disconnected_are_recovered_from_executions(world, faulty):
    """Fault: the apply's connection is cut (SIGKILL of the apply while its order rests), and
    the order fills while no reconciler is connected. Guarantee: the next apply learns the
    fill from the broker's executions, records it once with its execId, and plans nothing
    for that gap again."""
    w = world(faulty(HOLDINGS, closed=("BND",)), {"BND": 10})
    victim = w.cli.apply()
    wait_until(
        lambda: len(placed_orders(w.sim)) == 1, timeout=30, what="the sell", abort=exited(victim)
    )
    victim.kill()
    [sell] = placed_orders(w.sim)
    open_market(w.sim)
    wait_until(
        lambda: w.sim.call(lambda: len(w.sim.gateway.book.executions)) == 1,
        timeout=10,
        what="the fill while nobody is connected",
    )

    rerun = w.cli.finish(w.cli.apply())

    assert rerun.returncode == 0, rerun.explain()
    assert f"recover {sell.order_ref}:" in rerun.stderr
    ledger, broker = w.safe(positions={"BND": 10})
    assert len(broker.placed_refs) == 1
    assert ledger.kinds_by_ref[sell.order_ref][-1] == "FILL"


def test_fault_positions_request_that_never_ends_refuses_the_cycle_and_sends_nothing(world, faulty):
    """Fault: reqPositions is answered without positionEnd (`withholdPositionEnd`).
    Guarantee: missing data is an error, never "flat": the apply stops before planning with
    a message naming the positions request, sends no order and records no fill."""
    w = world(faulty(HOLDINGS, {"withholdPositionEnd": True}), TARGETS)
    w.cli.extra_env["IB_CONNECT_TIMEOUT"] = "3"

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 1, result.explain()
    assert "positions" in result.stderr, result.explain()
    ledger, broker = w.safe()
    assert broker.placed_refs == () and ledger.orders == {}


def per_account_desired_state(directory, accounts: dict[str, list[str]]) -> None:
    """One Portfolio per account, each buying one share of each of its symbols."""
    docs = []
    for account, symbols in accounts.items():
        rows = "\n".join(f"    - {{symbol: {s}, quantity: 1}}" for s in symbols)
        docs.append(
            f"""apiVersion: reconciler/v1
kind: Portfolio
metadata: {{name: book-{account.lower()}}}
spec:
  account: {account}
  targets:
{rows}
  cashReserve: 1%
  minTradeNotional: 0
  unmanaged: ignore
  execution: {{orderType: LMT, limitOffsetBps: 5, timeInForce: DAY, ttl: 60s}}
  riskPolicy: default
"""
        )
    docs.append(
        """apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {name: default}
spec:
  tradingState: ACTIVE
  maxOrderNotional: 60000
  maxPositionNotional: 80000
  maxLeverage: 1.0
  maxOrdersPerCycle: 500
  maxCycleTurnover: 100%
  maxDailyNotional: 500000
  maxPriceAge: 30s
  maxSpread: 1%
"""
    )
    (directory / "portfolio.yaml").write_text("---\n".join(docs), encoding="utf-8")


ACCOUNTS = ("DU0000001", "DU0000002", "DU0000003", "DU0000004")


def test_fault_pacing_pressure_of_200_orders_never_trips_error_100(world, faulty):
    """Fault: the gateway enforces IB's 50 messages/second (`pacingLimit: 50`) while one apply
    sends 200 orders (50 instruments in each of four accounts: few requests besides the
    orders). Guarantee: the reconciler paces itself: no error 100, no dropped connection,
    every order placed once and filled, every book converges."""
    symbols = [f"P{i:03d}" for i in range(50)]
    spec = faulty({}, {"pacingLimit": 50})
    spec["accounts"] += [{**spec["accounts"][0], "id": account} for account in ACCOUNTS[1:]]
    spec["instruments"] = [{"symbol": s, "price": 10.0} for s in symbols]
    w = world(spec, {})
    per_account_desired_state(w.cli.desired_dir, dict.fromkeys(ACCOUNTS, symbols))

    result = w.cli.finish(w.cli.apply(), timeout=120)

    assert result.returncode == 0, result.explain()
    errors = [e["fields"] for e in w.sim.journal.messages("out") if e["msg_id"] == 4]
    assert not [f for f in errors if f[3] == "100"], "the gateway answered error 100"
    targets = dict.fromkeys(symbols, 1.0)
    _, broker = w.safe(positions=targets)
    assert all(broker.positions[account] == targets for account in ACCOUNTS)
    assert len([r for r in broker.placed_refs if r]) == 200
