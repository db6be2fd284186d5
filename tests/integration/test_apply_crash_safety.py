"""Crash safety of `reconcile apply` (issue 5): SIGKILL the apply after its Kth order, rerun,
and prove that nothing is sent twice, positions converge without overshoot, the ledger
verifies and the rerun records how it resolved the killed cycle's orders.

The simulator runs in this process; `reconcile` runs as real subprocesses over TCP. Orders
for instruments whose session is closed rest at the simulator (PreSubmitted), so the apply is
provably blocked after exactly K orders when it is killed, and the test decides when those
orders fill (`open_market`): before the rerun, or only after it (the killed process's orders
are then still working at the gateway while the rerun plans).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from apply_helpers import (
    ACCOUNT,
    Cli,
    broker_orders,
    cycle_statuses,
    duplicate_refs,
    exited,
    filled_quantity,
    intent_recorded_at,
    ledger_event_kinds,
    ledger_kinds,
    ledger_payloads,
    open_market,
    placed_orders,
    positions,
    recorded_order_refs,
    scenario,
    shares_sent,
    store_url,
    write_desired_state,
)
from waiting import wait_until

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

KILLED_CLIENT = 31


@dataclass(frozen=True)
class Crash:
    holdings: dict[str, float]
    targets: dict[str, float]
    closed: tuple[str, ...]  # these instruments' orders rest until the market opens
    kill_after: int  # K: SIGKILL once this many orders reached the simulator
    open_before_rerun: bool  # False: the killed orders are still working during the rerun
    store: str = "sqlite"


CRASHES = {
    # K=1: the only sell rests; it fills while no apply runs; the rerun finds it completed.
    "K1-sell-fills-before-rerun": Crash(
        holdings={"BND": 20},
        targets={"BND": 10, "VEA": 10, "VWO": 10},
        closed=("BND",),
        kill_after=1,
        open_before_rerun=True,
    ),
    # K=3: three sells still work at the gateway while the rerun plans: in flight, not resent.
    "K3-sells-working-during-rerun": Crash(
        holdings={"BND": 20, "AGG": 20, "TLT": 20},
        targets={"BND": 10, "AGG": 10, "TLT": 10, "VEA": 10, "VWO": 10},
        closed=("BND", "AGG", "TLT"),
        kill_after=3,
        open_before_rerun=False,
    ),
    # K=5: two sells filled, then three buys sent and resting when the process dies; on
    # PostgreSQL, whose advisory lock dies with the killed process's session.
    "K5-buys-working-during-rerun-postgres": Crash(
        holdings={"BND": 20, "AGG": 20},
        targets={"BND": 10, "AGG": 10, "VEA": 10, "VWO": 10, "IAU": 10},
        closed=("VEA", "VWO", "IAU"),
        kill_after=5,
        open_before_rerun=False,
        store="postgres",
    ),
}


@pytest.fixture
def make_cli(tmp_path):
    clis: list[Cli] = []
    with contextlib.ExitStack() as stack:

        def make(sim, targets, *, store="sqlite") -> Cli:
            desired = write_desired_state(tmp_path / "desired_state", targets, ttl="30s")
            cli = Cli(
                tmp_path,
                f"{sim.host}:{sim.port}",
                store_url(store, tmp_path, stack),
                desired,
                client_id=KILLED_CLIENT,
            )
            clis.append(cli)
            return cli

        yield make
        for cli in clis:
            cli.close()


def reports_by_cycle(reports_dir: Path) -> dict[int, dict]:
    reports = {}
    for path in reports_dir.glob("*-cycle*.json"):
        body = json.loads(path.read_text(encoding="utf-8"))
        reports[body["cycle_id"]] = body
    return reports


def apply_cycle_id(stdout: str) -> int:
    lines = [line for line in stdout.splitlines() if line.startswith("Cycle ")]
    assert lines, f"no 'Cycle N: ...' line in apply output:\n{stdout}"
    return int(lines[-1].split()[1].rstrip(":"))


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param(c, id=name, marks=[pytest.mark.postgres] if c.store == "postgres" else [])
        for name, c in CRASHES.items()
    ],
)
def test_apply_when_killed_after_kth_order_then_rerun_never_sends_twice_and_converges(
    crash: Crash, make_cli, tmp_path
):
    with run_in_thread(scenario(crash.holdings, closed=crash.closed)) as sim:
        cli = make_cli(sim, crash.targets, store=crash.store)

        # 1. The first apply sends K orders, then waits on resting ones: kill it there.
        victim = cli.apply()
        wait_until(
            lambda: len(placed_orders(sim)) >= crash.kill_after,
            timeout=30,
            what=f"{crash.kill_after} orders at the simulator",
            abort=exited(victim),
        )
        victim.kill()
        assert victim.returncode == -9
        killed = placed_orders(sim)
        assert len(killed) == crash.kill_after, f"expected exactly K orders: {killed}"
        assert {o.client_id for o in killed} == {KILLED_CLIENT}
        killed_refs = {o.order_ref for o in killed}
        assert killed_refs <= recorded_order_refs(cli.db_url), (
            "write-ahead broken: an order reached the broker without its INTENT row"
        )
        working_at_kill = {o.order_ref for o in broker_orders(sim) if o.status != "Filled"}
        assert working_at_kill, "the kill was meant to land while orders were resting"

        if crash.open_before_rerun:
            open_market(sim)
            wait_until(
                lambda: all(o.status == "Filled" for o in broker_orders(sim)),
                timeout=10,
                what="the killed process's orders to fill",
            )

        # 2. The rerun takes over the dead process's lease, resolves its orders, and plans
        #    only what no earlier order covers.
        rerun = cli.finish(cli.apply())
        assert rerun.returncode == 0, rerun.explain()
        assert "lock held" not in rerun.stderr, "a SIGKILLed holder's lease blocked the rerun"
        for ref in working_at_kill:
            assert f"recover {ref}:" in rerun.stderr, (
                f"rerun did not look at {ref}:\n{rerun.stderr}"
            )
        rerun_sent = placed_orders(sim)[len(killed) :]
        assert not killed_refs & {o.order_ref for o in rerun_sent}
        symbols_working_at_kill = {
            o.symbol for o in broker_orders(sim) if o.order_ref in working_at_kill
        }
        rerun_symbols = {
            o.symbol for o in broker_orders(sim) if o.order_ref in {s.order_ref for s in rerun_sent}
        }
        assert not symbols_working_at_kill & rerun_symbols, (
            "the rerun sent a second order for a gap the killed process's order covers"
        )

        recovering = rerun
        if not crash.open_before_rerun:
            # The killed orders were in flight during the rerun; now they fill, and the next
            # apply records their outcome and has nothing left to do.
            open_market(sim)
            wait_until(
                lambda: all(o.status == "Filled" for o in broker_orders(sim)),
                timeout=10,
                what="the resting orders to fill",
            )
            before = len(placed_orders(sim))
            recovering = cli.finish(cli.apply())
            assert recovering.returncode == 0, recovering.explain()
            assert "nothing to do" in recovering.stdout, recovering.explain()
            assert len(placed_orders(sim)) == before, "a converged book still sent orders"

        # 3. The cycle report and the ledger say how each killed order was resolved.
        report = reports_by_cycle(tmp_path / "reports")[apply_cycle_id(recovering.stdout)]
        assert {r["order_ref"] for r in report.get("recovery", [])} == working_at_kill
        for ref in working_at_kill:
            kinds = ledger_kinds(cli.db_url, ref)
            assert kinds[0] == "INTENT" and kinds[-1] == "FILL", (ref, kinds)
            assert kinds.count("INTENT") == 1
            final = ledger_payloads(cli.db_url, ref)[-1][1]
            assert final.get("recovered") is True and final.get("filled") == 10, final
        assert "BREAK" not in ledger_event_kinds(cli.db_url), "ledger and broker disagree"

        # 4. Read-only checks run side by side: plan converged, ledger intact, orders shown.
        plan, verify, shown = (
            cli.start("plan", str(cli.desired_dir), "--detailed-exitcode"),
            cli.start("audit", "verify"),
            cli.start("show", "orders", "--format", "json"),
        )
        plan, verify, shown = cli.finish(plan), cli.finish(verify), cli.finish(shown)
        assert plan.returncode == 0, plan.explain()
        assert verify.returncode == 0, verify.explain()
        assert shown.returncode == 0, shown.explain()
        by_ref = {row["order_ref"]: row for row in shown.json()}
        for ref in killed_refs:
            assert by_ref[ref]["status"] == "FILL", by_ref[ref]
            assert by_ref[ref]["filled_quantity"] == by_ref[ref]["quantity"], by_ref[ref]

        # 5. The broker's view: each orderRef placed once, every gap traded exactly once.
        everything = placed_orders(sim)
        assert duplicate_refs(everything) == []
        assert {o.order_ref for o in everything} <= recorded_order_refs(cli.db_url)
        gaps = {s: crash.targets[s] - crash.holdings.get(s, 0.0) for s in crash.targets}
        assert shares_sent(broker_orders(sim)) == gaps, "over- or under-traded a gap"
        assert all(o.status == "Filled" for o in broker_orders(sim))
        assert positions(sim) == {s: q for s, q in crash.targets.items() if q}


def test_apply_when_an_intent_was_committed_but_never_sent_then_resolves_it_and_never_resends_it(
    make_cli,
):
    """The crash between committing an INTENT and sending it: the broker never heard of the
    order, so recovery closes it as RESOLVED and the gap is planned afresh under a new ref."""
    from reconciler.store import open_store

    holdings, targets = {"BND": 20}, {"BND": 10}
    with run_in_thread(scenario(holdings)) as sim:
        cli = make_cli(sim, targets)
        lost_ref = "rc-20260107T1700Z-dead00-001"
        store = open_store(cli.db_url)
        try:
            cycle_id = store.begin_cycle("apply", accounts=[ACCOUNT])  # never finished: a crash
            store.record_intent(
                {
                    "account": ACCOUNT,
                    "symbol": "BND",
                    "side": "SELL",
                    "quantity": 10.0,
                    "leg": 1,
                    "order_type": "LMT",
                    "limit_price": 72.96,
                },
                order_ref=lost_ref,
                plan_id="20260107T1700Z-dead00",
                cycle_id=cycle_id,
            )
        finally:
            store.close()

        result = cli.finish(cli.apply())

        assert result.returncode == 0, result.explain()
        assert f"recover {lost_ref}:" in result.stderr
        assert ledger_kinds(cli.db_url, lost_ref) == ["INTENT", "RESOLVED"]
        sent = placed_orders(sim)
        assert lost_ref not in {o.order_ref for o in sent}, (
            "an INTENT of unknown outcome was resent"
        )
        assert len(sent) == 1 and duplicate_refs(sent) == []
        assert shares_sent(broker_orders(sim)) == {"BND": -10.0}
        assert positions(sim) == {"BND": 10.0}


def test_apply_when_rerun_uses_another_client_id_then_records_the_killed_orders_fills_without_a_break(
    make_cli,
):
    holdings, targets = {"BND": 20}, {"BND": 10}
    with run_in_thread(scenario(holdings, closed=("BND",))) as sim:
        cli = make_cli(sim, targets)
        victim = cli.apply()
        wait_until(
            lambda: len(placed_orders(sim)) >= 1,
            timeout=30,
            what="the first order at the simulator",
            abort=exited(victim),
        )
        victim.kill()
        [killed] = placed_orders(sim)
        open_market(sim)
        wait_until(
            lambda: all(o.status == "Filled" for o in broker_orders(sim)),
            timeout=10,
            what="the killed process's order to fill",
        )

        rerun = cli.finish(cli.apply(client_id=KILLED_CLIENT + 1))

        assert rerun.returncode == 0, rerun.explain()
        assert ledger_kinds(cli.db_url, killed.order_ref)[-1] == "FILL"
        assert len(placed_orders(sim)) == 1 and positions(sim) == targets
        assert filled_quantity(cli.db_url, killed.order_ref) == 10, (
            "the recovered FILL has no fill rows (execIds) in the store"
        )
        assert "BREAK" not in ledger_event_kinds(cli.db_url), rerun.stderr


def test_apply_when_killed_orders_outlive_their_ttl_then_recovery_cancels_them_and_aborts_the_cycle(
    make_cli,
):
    with run_in_thread(scenario({"BND": 20}, closed=("BND",))) as sim:
        cli = make_cli(sim, {"BND": 10})
        cli.desired_dir.joinpath("portfolio.yaml").write_text(
            cli.desired_dir.joinpath("portfolio.yaml").read_text().replace("ttl: 30s", "ttl: 2s")
        )
        victim = cli.apply()
        wait_until(
            lambda: len(placed_orders(sim)) == 1, timeout=30, what="the sell", abort=exited(victim)
        )
        victim.kill()
        [killed] = placed_orders(sim)
        # The rerun's recovery cancels a working order once the wall clock is past its INTENT
        # plus its TTL (the rerun's clock is the system clock): that moment is the condition.
        ttl_ends = intent_recorded_at(cli.db_url, killed.order_ref) + dt.timedelta(seconds=2)
        wait_until(
            lambda: dt.datetime.now(dt.UTC) > ttl_ends,
            timeout=10,
            what="the killed order's 2s TTL to pass since its INTENT",
        )

        rerun = cli.finish(cli.apply())
        # Its own new sell rests in the closed market until its TTL: none filled, exit 4.
        assert rerun.returncode == 4, rerun.explain()
        assert f"recover {killed.order_ref}: cancelled by recovery after its TTL" in rerun.stderr
        assert ledger_kinds(cli.db_url, killed.order_ref)[-1] == "CANCEL"
        assert (
            next(o for o in broker_orders(sim) if o.order_ref == killed.order_ref).status
            == "Cancelled"
        )
        assert "aborted" in cycle_statuses(cli.db_url)
        assert duplicate_refs(placed_orders(sim)) == []
