"""The kill switch against a running apply (issue 8, item 3): `reconcile halt` stops an apply
that is following slow orders (its working orders are cancelled, nothing more is sent), and
`halt --cancel-open` from another process cancels the reconciler's orders without taking the
apply's client id, reporting what it cancelled and naming whatever is still working.

The simulator runs in this process with slow fills (orders are acknowledged, then work for a
long time); `reconcile` runs as real subprocesses over TCP. Both sides are checked: the
apply's report and ledger, and the simulator's orders and executions.
"""

from __future__ import annotations

import json
import time

import pytest
from apply_helpers import (
    ACCOUNT,
    broker_orders,
    exited,
    ledger_kinds,
    placed_orders,
    scenario,
    write_desired_state,
)
from library_cli import LibraryCli, background_client
from waiting import wait_until

from reconciler.model.settings import DEFAULT_OPERATOR_CLIENT_ID
from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

APPLY_CLIENT = 61
OPERATOR_CLIENT = DEFAULT_OPERATOR_CLIENT_ID  # IB_OPERATOR_CLIENT_ID is not set
REQ_ALL_OPEN_ORDERS = 16  # incoming TWS message id
FOREIGN_CLIENT = 55
FILL_LATENCY = 30.0  # seconds an acknowledged order works before it can fill
HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}  # one sell first, then two buys


def slow_scenario() -> dict:
    spec = scenario(HOLDINGS)
    spec["latency"] = {"fill": FILL_LATENCY}
    return spec


@pytest.fixture(params=["ib_async", "ib_insync"])
def make_cli(request, tmp_path):
    clis: list[LibraryCli] = []

    def make(sim) -> LibraryCli:
        desired = write_desired_state(tmp_path / "desired_state", TARGETS, ttl="120s")
        cli = LibraryCli(
            tmp_path,
            f"{sim.host}:{sim.port}",
            f"sqlite:///{tmp_path / 'store.db'}",
            desired,
            client_id=APPLY_CLIENT,
            library=request.param,
        )
        clis.append(cli)
        return cli

    yield make
    for cli in clis:
        cli.close()


def working_refs(sim) -> set[str]:
    return {
        o.order_ref
        for o in broker_orders(sim)
        if o.order_ref.startswith("rc-") and o.status in ("PreSubmitted", "Submitted")
    }


def executions(sim) -> list[tuple[str, str]]:
    return sim.call(lambda: [(e.order_ref, e.exec_id) for e in sim.gateway.broker.executions])


def start_apply_and_wait_for_the_working_sell(sim, cli):
    apply = cli.apply("--format", "json")
    wait_until(
        lambda: len(working_refs(sim)) == 1,
        timeout=30,
        what="the apply's sell working at the simulator",
        abort=exited(apply),
    )
    return apply


def assert_the_apply_stopped(cli, sim, apply, halted_at: float) -> None:
    """The apply cancelled its working sell within a few seconds of the halt, sent none of
    its buys, and says so; the broker agrees; nothing filled."""
    wait_until(
        lambda: not working_refs(sim),
        timeout=10,
        what="the apply to cancel its working order after the halt",
        abort=exited(apply),
    )
    reaction = time.monotonic() - halted_at
    result = cli.finish(apply)
    assert result.returncode != 1, result.explain()
    assert reaction < 5.0, f"the apply took {reaction:.1f}s to cancel after the halt"
    report = json.loads(result.stdout)
    by_side = {o["side"]: [] for o in report["orders"]}
    for o in report["orders"]:
        by_side[o["side"]].append(o)
    [sell] = by_side["SELL"]
    assert sell["status"] == "CANCELLED" and sell["filled"] == 0, sell
    assert "halted" in sell["message"], sell
    assert [b["status"] for b in by_side["BUY"]] == ["NOT_SENT", "NOT_SENT"], by_side["BUY"]
    assert all("halted" in b["message"] for b in by_side["BUY"]), by_side["BUY"]
    assert "HALTED out of band" in result.stderr
    assert ledger_kinds(cli.db_url, sell["order_ref"])[-1] == "CANCEL"
    # The broker: one order ever sent (the sell), cancelled, nothing executed.
    assert [o.order_ref for o in placed_orders(sim)] == [sell["order_ref"]]
    [at_broker] = broker_orders(sim)
    assert (at_broker.status, at_broker.filled) == ("Cancelled", 0.0)
    assert executions(sim) == []


def test_halt_during_a_slow_apply_then_its_working_order_is_cancelled_and_nothing_more_is_sent(
    make_cli,
):
    with run_in_thread(slow_scenario()) as sim:
        cli = make_cli(sim)
        apply = start_apply_and_wait_for_the_working_sell(sim, cli)

        halted = cli.run("halt", "--reason", "desk says stop")
        halted_at = time.monotonic()

        assert halted.returncode == 0, halted.explain()
        assert_the_apply_stopped(cli, sim, apply, halted_at)


def test_halt_cancel_open_from_another_process_with_the_same_environment_then_cancels_and_reports(
    make_cli,
):
    """The operator's shell has the apply's IB_CLIENT_ID: the halt must not connect with it
    (error 326), and must report the order it saw cancelled, by orderRef."""
    with run_in_thread(slow_scenario()) as sim:
        cli = make_cli(sim)
        apply = start_apply_and_wait_for_the_working_sell(sim, cli)
        [ref] = working_refs(sim)

        halted = cli.run("halt", "--reason", "desk says stop", "--cancel-open")
        halted_at = time.monotonic()

        assert halted.returncode == 0, halted.explain()
        # The order may have been cancelled by the apply (it saw the halt) before the halt
        # process looked; either way it is reported, by orderRef.
        assert f"Cancelled 1 open order(s): {ref}" in halted.stdout, halted.explain()
        assert "326" not in halted.stderr + halted.stdout
        assert sim.journal.messages("in", REQ_ALL_OPEN_ORDERS, client_id=OPERATOR_CLIENT), (
            "the halt did not look at the open orders with the operator client id"
        )
        assert_the_apply_stopped(cli, sim, apply, halted_at)


def _place(client, symbol: str, ref: str) -> None:
    import ib_async

    async def place():
        ib = client.ib
        [contract] = await ib.qualifyContractsAsync(ib_async.Stock(symbol, "SMART", "USD"))
        order = ib_async.LimitOrder("BUY", 1, 1.0, account=ACCOUNT, orderRef=ref)
        ib.placeOrder(contract, order)

    client.call(place)


def test_halt_cancel_open_when_the_owner_does_not_cancel_then_exits_1_naming_it_and_global_cancel_ends_it(
    make_cli,
):
    """An rc- order whose owner stays connected and ignores the halt (another program using
    the reconciler's orderRef scheme, or an old version): `--cancel-open` waits, then exits 1
    naming it; `--global-cancel` cancels it, and, as its help says, every other open order of
    the account too (here a manual one)."""
    with run_in_thread(scenario(HOLDINGS)) as sim:
        cli = make_cli(sim)
        with background_client(sim.host, sim.port, FOREIGN_CLIENT) as foreign:
            _place(foreign, "VEA", "rc-stuck-1")
            _place(foreign, "VWO", "manual-2")
            wait_until(
                lambda: (
                    {o.order_ref for o in broker_orders(sim) if o.status == "Submitted"}
                    == {"rc-stuck-1", "manual-2"}
                ),
                timeout=10,
                what="the foreign orders working",
            )

            stuck = cli.run("halt", "--reason", "stop", "--cancel-open", "--wait", "1")

            assert stuck.returncode == 1, stuck.explain()
            assert "rc-stuck-1 (client id 55, Submitted" in stuck.stderr, stuck.explain()
            assert "--global-cancel" in stuck.stderr
            assert "manual-2" not in stuck.stdout + stuck.stderr
            assert {o.order_ref for o in broker_orders(sim) if o.status == "Submitted"} == {
                "rc-stuck-1",
                "manual-2",
            }, "a plain --cancel-open touched an order it may not cancel"

            ended = cli.run(
                "halt", "--reason", "stop", "--cancel-open", "--global-cancel", "--wait", "1"
            )

            assert ended.returncode == 0, ended.explain()
            assert "reqGlobalCancel sent" in ended.stdout, ended.explain()
            assert "Cancelled 1 open order(s): rc-stuck-1" in ended.stdout, ended.explain()
            assert {o.order_ref: o.status for o in broker_orders(sim)} == {
                "rc-stuck-1": "Cancelled",
                "manual-2": "Cancelled",
            }


def test_halt_global_cancel_without_cancel_open_is_refused_and_records_nothing(tmp_path):
    desired = write_desired_state(tmp_path / "desired_state", TARGETS)
    cli = LibraryCli(tmp_path, "127.0.0.1:9", f"sqlite:///{tmp_path / 'store.db'}", desired)
    refused = cli.run("halt", "--reason", "stop", "--global-cancel")
    assert refused.returncode == 1, refused.explain()
    assert "--global-cancel needs --cancel-open" in refused.stderr
    assert "Not halted" in cli.run("resume").stdout


def test_halt_cancel_open_when_the_gateway_is_down_still_records_the_halt_and_exits_1(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    desired = write_desired_state(tmp_path / "desired_state", TARGETS)
    cli = LibraryCli(tmp_path, f"127.0.0.1:{port}", f"sqlite:///{tmp_path / 'store.db'}", desired)
    result = cli.run("halt", "--reason", "stop", "--cancel-open", "--wait", "1")
    assert result.returncode == 1, result.explain()
    assert "halt recorded, but the reconciler's open orders could not be read" in result.stderr
    assert "Traceback" not in result.stderr
    assert "HALTED: stop" in cli.run("status").stdout
