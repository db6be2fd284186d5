"""Fault catalogue: processes misbehave around an apply (another program trades between plan
and apply, two applies at once, the apply killed or terminated at a random point, the
gateway killed and restarted from its state file with orders working).

Each test runs `reconcile` as subprocesses against the simulator and ends with the shared
invariants of both ledger and broker (tests/faults/invariants.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal

import pytest
from apply_helpers import exited, open_market, placed_orders
from foreign import place_order
from invariants import assert_safe, broker_view
from waiting import wait_until

from reconciler.sim import run_in_thread

HOLDINGS = {"BND": 20}
TARGETS = {"BND": 10, "VEA": 10, "VWO": 10}
SEED = 20261130  # the random kill points below are reproducible from it


def all_done(sim) -> bool:
    return sim.call(lambda: not sim.gateway.book.working_orders())


def test_fault_external_trade_between_plan_and_apply_makes_the_saved_plan_stale(world, faulty):
    """Fault: after `reconcile plan --out` another program sells the BND the plan meant to
    sell. Guarantee: applying the saved plan is refused as stale (exit 3), nothing is sent,
    and a fresh apply plans from the new position (no double sale)."""
    w = world(faulty(HOLDINGS), TARGETS)
    plan_file = w.tmp_path / "plan.json"
    planned = w.cli.run("plan", str(w.cli.desired_dir), "--out", str(plan_file))
    assert planned.returncode == 0, planned.explain()
    asyncio.run(place_order(w.sim.host, w.sim.port, "BND", 10, 60.0, action="SELL"))

    stale = w.cli.run("apply", str(plan_file), "--dir", str(w.cli.desired_dir), "--auto-approve")

    assert stale.returncode == 3, stale.explain()
    assert [r for r in placed_orders_refs(w.sim) if r] == []
    fresh = w.cli.finish(w.cli.apply("--format", "json"))
    assert fresh.returncode == 0, fresh.explain()
    assert {o["key"] for o in json.loads(fresh.stdout)["orders"]} == {"VEA", "VWO"}
    w.safe(positions=TARGETS)


def placed_orders_refs(sim) -> list[str]:
    return list(broker_view(sim).placed_refs)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_fault_apply_killed_at_a_random_point_then_rerun_converges_without_sending_twice(
    signum, world, faulty
):
    """Fault: the apply gets SIGKILL or SIGTERM after a seeded random number of the messages
    it sends the gateway (anywhere from the snapshot to its last order). Guarantee: the
    rerun resolves whatever the dead process left (orders working or filled), sends no
    orderRef twice, trades no gap twice and converges; the ledger verifies."""
    rng = random.Random(f"{SEED}-{signum.name}")
    # The sell fills at once; the buys rest (closed market) until the kill.
    w = world(faulty(HOLDINGS, closed=("VEA", "VWO")), TARGETS)
    victim = w.cli.apply()
    # The point: the Nth message the apply sends (its whole session is about 40 messages);
    # an apply already waiting on its three orders is killed there.
    point = rng.randint(1, 45)
    from_client = lambda: len(w.sim.journal.messages("in", client_id=w.cli.client_id))  # noqa: E731
    wait_until(
        lambda: from_client() >= point or len(placed_orders(w.sim)) == len(TARGETS),
        timeout=30,
        what=f"message {point} of the apply",
        abort=exited(victim),
    )
    victim.popen.send_signal(signum)
    victim.wait(10)
    open_market(w.sim)
    wait_until(lambda: all_done(w.sim), timeout=10, what="the dead apply's orders to finish")

    rerun = w.cli.finish(w.cli.apply())

    assert rerun.returncode == 0, f"signal {signum.name} at message {point}\n" + rerun.explain()
    w.safe(positions=TARGETS)


def test_fault_gateway_killed_and_restarted_from_its_state_file_with_working_orders(
    world, faulty, tmp_path
):
    """Fault: the gateway dies while the apply's orders rest and comes back from its state
    file (a copy taken while it ran, as a crash leaves it) on a new port. Guarantee: the
    interrupted apply fails without claiming outcomes; after the restart the restored orders
    keep working and fill, and the next apply records them from the broker, resends
    nothing and converges."""
    state = tmp_path / "sim-state.json"
    spec = faulty(HOLDINGS, closed=("BND", "VEA", "VWO"))
    w = world(spec, TARGETS, state_file=state)
    apply = w.cli.apply()
    wait_until(
        lambda: len(placed_orders(w.sim)) == 1, timeout=30, what="the sell", abort=exited(apply)
    )
    wait_until(
        lambda: "rc-" in state.read_text(encoding="utf-8"), timeout=10, what="the state file"
    )
    crashed = tmp_path / "crashed-state.json"
    shutil.copyfile(state, crashed)
    refs_before = {o.order_ref for o in placed_orders(w.sim)}
    # The gateway dies: it stops listening and every connection drops at once.
    w.sim.call(lambda: asyncio.ensure_future(w.sim.gateway.stop()))

    interrupted = w.cli.finish(apply)

    assert interrupted.returncode != 0 or "FILLED" not in interrupted.stdout, interrupted.explain()
    with run_in_thread(spec, state_file=crashed) as restarted:
        w.cli.gateway = f"{restarted.host}:{restarted.port}"
        working = restarted.call(
            lambda: {o.order_ref for o in restarted.gateway.book.working_orders()}
        )
        assert refs_before <= working, "the restored gateway lost the working orders"
        open_market(restarted)
        wait_until(lambda: all_done(restarted), timeout=10, what="the restored orders to fill")

        rerun = w.cli.finish(w.cli.apply())

        assert rerun.returncode == 0, rerun.explain()
        ledger, _ = assert_safe(w.db_url, restarted, positions=TARGETS)
        for ref in refs_before:
            assert ledger.kinds_by_ref[ref][-1] == "FILL", ledger.kinds_by_ref[ref]


def test_fault_apply_sigterm_while_orders_rest_then_it_stops_sending_and_closes_its_cycle(
    world, faulty
):
    """Fault: systemd stops the unit (SIGTERM) while the apply's buys rest at the gateway.
    Guarantee: the apply stops sending, logs that it stops, records the resting orders as
    left for the next run's recovery, closes its cycle with an outcome and exits with a code
    automation can see (not killed by the signal); the next apply resolves them and sends
    nothing twice."""
    w = world(faulty(HOLDINGS, closed=("VEA", "VWO")), TARGETS)
    victim = w.cli.apply()
    wait_until(
        lambda: len(placed_orders(w.sim)) == len(TARGETS),
        timeout=30,
        what="the three orders",
        abort=exited(victim),
    )

    victim.popen.send_signal(signal.SIGTERM)
    stopped = w.cli.finish(victim, timeout=60)

    # It ended itself, with its outcome's exit code (here: the sell filled, so 0 as for any
    # partly applied cycle), not killed by the signal.
    assert stopped.returncode >= 0, stopped.explain()
    assert "left for the next run's recovery (stopping)" in stopped.stderr, stopped.explain()
    assert "stopping: no further orders are sent" in stopped.stderr, stopped.explain()
    import sqlite3

    with sqlite3.connect(w.tmp_path / "store.db") as db:
        [(status,)] = db.execute("SELECT status FROM cycles ORDER BY id DESC LIMIT 1").fetchall()
    assert status == "partial", stopped.explain()
    open_market(w.sim)
    wait_until(lambda: all_done(w.sim), timeout=10, what="the resting orders to fill")
    rerun = w.cli.finish(w.cli.apply())
    assert rerun.returncode == 0, rerun.explain()
    w.safe(positions=TARGETS)
