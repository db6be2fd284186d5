"""Fault catalogue: two applies at once. One writer per account (issue 5): of two
`reconcile apply` runs started together on one account exactly one trades, the other exits 3
(or, with the same IB client id, is turned away by the gateway); one started while the
holder works is refused naming the holder; with the SQLite store and with PostgreSQL.

The simulator runs in this process; `reconcile` runs as real subprocesses over TCP. The
winner's orders rest at the simulator (their instrument's session is closed), so it provably
holds the lock until the test opens the market; then it finishes. Each PostgreSQL test gets
a uniquely named database, dropped after.
"""

from __future__ import annotations

import contextlib

import pytest
from apply_helpers import (
    ACCOUNT,
    Cli,
    broker_orders,
    cycle_statuses,
    duplicate_refs,
    exited,
    open_market,
    placed_orders,
    positions,
    scenario,
    store_url,
    write_desired_state,
)
from invariants import assert_safe
from waiting import wait_until

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

FIRST_CLIENT, SECOND_CLIENT, THIRD_CLIENT = 41, 42, 43
TARGETS = {"VEA": 10, "VWO": 10}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    with contextlib.ExitStack() as stack:
        yield store_url(request.param, tmp_path, stack)


@pytest.fixture
def cli_for(tmp_path):
    clis: list[Cli] = []

    def make(sim, db_url: str) -> Cli:
        desired = write_desired_state(tmp_path / "desired_state", TARGETS, ttl="60s")
        cli = Cli(tmp_path, f"{sim.host}:{sim.port}", db_url, desired, client_id=FIRST_CLIENT)
        clis.append(cli)
        return cli

    yield make
    for cli in clis:
        cli.close()


def test_apply_when_two_start_together_then_exactly_one_trades_and_the_others_exit_3(
    db_url, cli_for
):
    """Both start at once on a fresh store (schema creation races too); the loser is refused.
    A third apply started while the winner provably holds the lease (its orders rest at the
    gateway) is refused as well and names the holder's pid. Then the winner finishes."""
    with run_in_thread(scenario({}, closed=TARGETS)) as sim:
        cli = cli_for(sim, db_url)
        applies = {
            FIRST_CLIENT: cli.apply(client_id=FIRST_CLIENT),
            SECOND_CLIENT: cli.apply(client_id=SECOND_CLIENT),
        }

        wait_until(
            lambda: any(p.poll() is not None for p in applies.values()),
            timeout=30,
            what="one of the two applies to give up",
        )
        ended = [c for c, p in applies.items() if p.poll() is not None]
        assert len(ended) == 1, "both applies ended:\n" + "\n".join(
            cli.finish(p).explain() for p in applies.values()
        )
        [loser_id] = ended
        [winner_id] = [c for c in applies if c != loser_id]
        winner = applies[winner_id]
        loser = cli.finish(applies[loser_id])
        assert loser.returncode == 3, loser.explain()
        assert f"refused: lock held: account {ACCOUNT} is locked by" in loser.stderr, (
            loser.explain()
        )
        wait_until(
            lambda: len(placed_orders(sim)) == len(TARGETS),
            timeout=30,
            what="the winner's orders at the simulator",
            abort=exited(winner),
        )

        late = cli.finish(cli.apply(client_id=THIRD_CLIENT))

        assert late.returncode == 3, late.explain()
        assert f"account {ACCOUNT} is locked by" in late.stderr, late.explain()
        assert f"pid {winner.pid} " in late.stderr, f"holder not named:\n{late.stderr}"
        assert winner.poll() is None, "the winner should still be waiting on its orders"
        assert {o.client_id for o in placed_orders(sim)} == {winner_id}

        open_market(sim)
        done = cli.finish(winner)

        assert done.returncode == 0, done.explain()
        assert done.stdout.count("FILLED") == len(TARGETS), done.explain()
        sent = placed_orders(sim)
        assert len(sent) == len(TARGETS) and {o.client_id for o in sent} == {winner_id}
        assert duplicate_refs(sent) == []
        assert all(o.status == "Filled" for o in broker_orders(sim))
        assert positions(sim) == TARGETS
        assert cycle_statuses(db_url) == ["ok", "refused", "refused"]
        assert_safe(db_url, sim, positions=TARGETS)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_fault_two_concurrent_applies_with_one_client_id_then_exactly_one_trades(
    store, world, faulty
):
    """Fault: two applies start together with the same IB client id. Guarantee: exactly one
    trades; the other is refused (exit 3, lock held) or turned away by the gateway (exit 1,
    client id in use) before sending anything; every gap is traded once.
    (Different client ids: the test above.)"""
    w = world(faulty({}, closed=("VEA", "VWO")), {"VEA": 10, "VWO": 10}, store=store)
    first, second = w.cli.apply(), w.cli.apply()
    wait_until(
        lambda: first.poll() is not None or second.poll() is not None,
        timeout=30,
        what="one of the two applies to give up",
    )
    loser, winner = (first, second) if first.poll() is not None else (second, first)
    lost = w.cli.finish(loser)
    assert lost.returncode in (1, 3), lost.explain()
    assert "Traceback" not in lost.stderr, lost.explain()
    assert winner.poll() is None, "both applies ended"
    wait_until(
        lambda: len(placed_orders(w.sim)) == 2,
        timeout=30,
        what="the winner's orders",
        abort=exited(winner),
    )
    open_market(w.sim)

    done = w.cli.finish(winner)

    assert done.returncode == 0, done.explain()
    _, broker = w.safe(positions={"VEA": 10, "VWO": 10})
    assert len([r for r in broker.placed_refs if r]) == 2
