"""Outcome honesty of `reconcile apply` (issue 8, item 2): an order's outcome and its fills
come from what the broker says, never from a client library's guess, and a position the ledger
cannot explain is reported as a ledger break instead of being absorbed.

The simulator runs in this process; `reconcile` runs as real subprocesses over TCP, with each
supported client library. Both sides are checked: the store (ledger, fills, `show fills`) and
the simulator's own orders and executions.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from apply_helpers import (
    ACCOUNT,
    Cli,
    broker_orders,
    exited,
    ledger_event_kinds,
    open_market,
    positions,
    scenario,
    write_desired_state,
)
from library_cli import LibraryCli
from waiting import wait_until, wait_until_async

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

CLIENT_ID = 51
MANUAL_CLIENT_ID = 77


@pytest.fixture(params=["ib_async", "ib_insync"])
def make_cli(request, tmp_path):
    clis: list[Cli] = []

    def make(sim, targets, *, ttl: str = "30s") -> LibraryCli:
        desired = write_desired_state(tmp_path / "desired_state", targets, ttl=ttl)
        cli = LibraryCli(
            tmp_path,
            f"{sim.host}:{sim.port}",
            f"sqlite:///{tmp_path / 'store.db'}",
            desired,
            client_id=CLIENT_ID,
            library=request.param,
        )
        clis.append(cli)
        return cli

    yield make
    for cli in clis:
        cli.close()


# The withheld-acks / 10148 scenario lives in the fault catalogue:
# tests/faults/test_order_faults.py::test_fault_10148_on_the_ttl_cancel_of_a_filled_order_records_every_fill_as_filled


async def _place_resting_order(host: str, port: int, symbol: str, quantity: float) -> None:
    """A manual order from another program (not the reconciler): BUY `quantity` at a high
    limit; it rests until its instrument's session opens."""
    import ib_async

    ib = ib_async.IB()
    await ib.connectAsync(host, port, clientId=MANUAL_CLIENT_ID, timeout=10)
    try:
        [contract] = await ib.qualifyContractsAsync(ib_async.Stock(symbol, "SMART", "USD"))
        order = ib_async.LimitOrder("BUY", quantity, 1000.0, account=ACCOUNT, orderRef="manual-1")
        trade = ib.placeOrder(contract, order)
        await wait_until_async(
            lambda: trade.orderStatus.status in ("PreSubmitted", "Submitted"),
            timeout=10,
            what="the manual order's acknowledgement",
        )
    finally:
        ib.disconnect()


def test_apply_when_a_fill_it_never_saw_moves_a_position_then_reports_a_ledger_break_instead_of_absorbing_it(
    make_cli,
):
    """While the apply's orders work, another program's order fills on the same account: the
    position after the apply is one the ledger (last snapshot + recorded fills) cannot
    explain. It is a BREAK in the ledger and the report, and the after-snapshot does not
    swallow it: the next cycle reports it again."""
    targets = {"VEA": 10, "VWO": 10}
    with run_in_thread(scenario({}, closed=("IAU", "VEA", "VWO"))) as sim:
        cli = make_cli(sim, targets)

        apply = cli.apply("--format", "json")
        wait_until(
            lambda: len([o for o in broker_orders(sim) if o.order_ref.startswith("rc-")]) == 2,
            timeout=30,
            what="the apply's two orders at the simulator",
            abort=exited(apply),
        )
        # The apply has taken its snapshot and waits for its orders: now another program
        # trades on the account, and everything fills.
        asyncio.run(_place_resting_order(sim.host, sim.port, "IAU", 5))
        open_market(sim)
        result = cli.finish(apply)

        assert result.returncode == 0, result.explain()
        report = json.loads(result.stdout)
        assert {o["status"] for o in report["orders"]} == {"FILLED"}
        assert positions(sim) == {**targets, "IAU": 5.0}
        assert ledger_event_kinds(cli.db_url).count("BREAK") == 1
        assert "LEDGER_BREAK: account=DU0000001 symbol=IAU" in result.stderr, result.explain()
        [message] = report.get("breaks_after", [])
        assert "symbol=IAU" in message and "ledger=0" in message and "broker=5" in message

        # Not absorbed: the next cycle finds the same break before planning.
        again = cli.finish(cli.apply())
        assert again.returncode == 0, again.explain()
        assert "LEDGER_BREAK: account=DU0000001 symbol=IAU" in again.stderr, again.explain()
        assert ledger_event_kinds(cli.db_url).count("BREAK") == 2
