"""How the simulator is run: in a background thread, as `reconcile sim`, with latency."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from waiting import wait_until_async

from reconciler.sim import run_in_thread


def test_run_in_thread_serves_clients_and_flushes_state_on_exit(client_lib, tmp_path):
    state = tmp_path / "state.json"
    with run_in_thread(state_file=state) as sim:

        async def trade_once():
            ib = client_lib.IB()
            await ib.connectAsync(sim.host, sim.port, clientId=9, timeout=5)
            [contract] = await ib.qualifyContractsAsync(client_lib.Stock("BND", "SMART", "USD"))
            trade = ib.placeOrder(
                contract, client_lib.LimitOrder("BUY", 10, 72.50, account="DU0000001")
            )
            await wait_until_async(
                lambda: trade.orderStatus.status == "Submitted", what="the order working"
            )
            sim.set_quote("BND", bid=72.40, ask=72.50)  # thread-safe: runs on the sim's loop
            await asyncio.wait_for(trade.filledEvent, 5)
            ib.disconnect()
            return trade

        trade = asyncio.run(trade_once())
        assert trade.orderStatus.avgFillPrice == 72.50
        assert sim.book.accounts["DU0000001"].holdings[trade.contract.conId].quantity == 10
    saved = json.loads(state.read_text())
    assert [
        h["quantity"]
        for h in saved["accounts"]["DU0000001"]["holdings"]
        if h["con_id"] == trade.contract.conId
    ] == [10]


@pytest.mark.asyncio
async def test_latency_when_ack_is_delayed_then_order_is_pending_until_acknowledged(
    sim, connect, client_lib, stock, wait
):
    sim.ack_delay = 0.2
    sim.fill_delay = 0.3
    ib = await connect(sim, client_id=1)
    trade = ib.placeOrder(
        await stock(ib, "VTI"), client_lib.MarketOrder("BUY", 1, account="DU0000001")
    )
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # the order reached the simulator
    assert trade.orderStatus.status == "PendingSubmit"
    await wait(lambda: trade.orderStatus.status == "Submitted", what="delayed ack")
    assert trade.fills == []
    await wait(trade.isDone, what="delayed fill")
    assert trade.orderStatus.status == "Filled"


def test_cli_sim_runs_until_sigterm_then_exits_0_and_keeps_state(tmp_path):
    state = tmp_path / "cli-state.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "sim",
            "--port",
            "0",
            "--state",
            str(state),
            "--accounts",
            "DU0000077",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = None
        for line in proc.stderr:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+) \(accounts (\S+);", line)
            if match:
                port, accounts = int(match.group(1)), match.group(2)
                break
        assert port and accounts == "DU0000077"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = json.loads(state.read_text())
    assert saved["accounts"]["DU0000077"]["cash"] == {"USD": 1000000.0}


def test_cli_sim_when_scenario_is_invalid_then_exit_1_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  - id: DU0000001\n    type: savings\n")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "sim", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"{bad}:3: /accounts/0/type" in result.stderr
    assert "Traceback" not in result.stderr
