"""Apply sends only what it must (issue 12): with the lockfile committed, a cycle's messages
to the gateway are one quote and one order per instrument traded plus a few account
requests; no contract details, no request made twice. Counted from the simulator's journal
(a count, never a time). The simulator runs in this process; `reconcile` as subprocesses.
"""

from __future__ import annotations

import collections

import pytest
from apply_helpers import Cli, positions, scenario, write_desired_state

from reconciler.sim import run_in_thread

pytestmark = pytest.mark.integration

CLIENT = 51
TARGETS = {"VTI": 5, "BND": 5, "VEA": 10, "VWO": 10}
HELD = {"VTI": 1}  # a held target: its contract comes with the position, checked against the lock
# reqPositions (start-up sync), reqAccountUpdates (the start-up account stream), server time,
# open orders, executions, completed orders, account values + their cancel, market data
# type, and the one positions request after the orders.
ACCOUNT_REQUESTS = 10
REQ_MKT_DATA, PLACE_ORDER, REQ_CONTRACT_DETAILS = 1, 3, 9


def test_apply_with_a_committed_lock_sends_one_quote_and_one_order_per_instrument(tmp_path):
    with run_in_thread(scenario(HELD)) as sim:
        desired = write_desired_state(tmp_path / "desired_state", TARGETS)
        cli = Cli(tmp_path, f"{sim.host}:{sim.port}", f"sqlite:///{tmp_path / 'r.db'}", desired,
                  client_id=CLIENT)
        try:
            locked = cli.run("lock", str(desired), "--gateway", cli.gateway, client_id=CLIENT + 1)
            assert locked.returncode == 0, locked.explain()
            mark = len(sim.journal)
            applied = cli.finish(cli.apply())
        finally:
            cli.close()
        assert applied.returncode == 0, applied.explain()
        sent = [e for e in list(sim.journal)[mark:]
                if e["dir"] == "in" and e["client_id"] == CLIENT and isinstance(e["msg_id"], int)]
        counts = collections.Counter(e["msg_id"] for e in sent)
        held = positions(sim)
    n = len(TARGETS)
    assert counts[REQ_CONTRACT_DETAILS] == 0, counts
    assert counts[REQ_MKT_DATA] == n, counts
    assert counts[PLACE_ORDER] == n, counts
    others = {k: v for k, v in counts.items() if k not in (REQ_MKT_DATA, PLACE_ORDER)}
    assert sum(others.values()) <= ACCOUNT_REQUESTS, others
    assert all(v == 1 for k, v in others.items() if k != 61), others  # nothing asked twice
    assert counts[61] == 2, counts  # positions: the start-up sync and once after the orders
    assert held == {s: float(q) for s, q in TARGETS.items()}


def test_lock_check_passes_on_a_fresh_lock_and_names_an_entry_the_gateway_contradicts(tmp_path):
    with run_in_thread(scenario({})) as sim:
        desired = write_desired_state(tmp_path / "desired_state", {"VTI": 5, "BND": 5})
        cli = Cli(tmp_path, f"{sim.host}:{sim.port}", f"sqlite:///{tmp_path / 'r.db'}", desired,
                  client_id=CLIENT)
        try:
            gateway = ("--gateway", cli.gateway)
            assert cli.run("lock", str(desired), *gateway).returncode == 0
            fine = cli.run("lock", str(desired), "--check", *gateway)
            lockfile = desired / "instruments.lock.yaml"
            text = lockfile.read_text(encoding="utf-8")
            lockfile.write_text(text.replace("minTick: 0.01", "minTick: 0.05", 1), "utf-8")
            edited = cli.run("lock", str(desired), "--check", *gateway)
        finally:
            cli.close()
    assert fine.returncode == 0, fine.explain()
    assert "agrees with the gateway (2 instrument(s))" in fine.stdout
    assert edited.returncode == 1, edited.explain()
    assert "min_tick locked=0.05 gateway=0.01" in edited.stderr
