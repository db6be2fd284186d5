"""Every encoder against the real decoders of both client libraries, at both versions."""

from __future__ import annotations

import datetime as dt
import importlib
import logging

import pytest

from reconciler.sim import messages as m
from reconciler.sim.book import SimExecution, SimOrder
from reconciler.sim.market import builtin_universe

VERSIONS = {"ib_async": (176, 178), "ib_insync": (176,)}
CASES = [(lib, v) for lib, versions in VERSIONS.items() for v in versions]
VTI = next(i for i in builtin_universe() if i.symbol == "VTI")


class Recorder:
    """Stands in for the client's Wrapper: records every callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.ib = type("IB", (), {"TimezoneTWS": None})()
        self.defaultTimezone = dt.UTC

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def decode(lib: str, version: int, fields: list[str], caplog) -> list[tuple[str, tuple]]:
    decoder_module = importlib.import_module(f"{lib}.decoder")
    wrapper = Recorder()
    decoder = decoder_module.Decoder(wrapper, version)
    with caplog.at_level(logging.ERROR):
        decoder.interpret(list(fields))
    assert not [r for r in caplog.records if "Error" in r.getMessage()], caplog.text
    return wrapper.calls


def sample_order(**changes) -> SimOrder:
    values = dict(
        perm_id=1_000_000_007,
        client_id=3,
        order_id=42,
        account="DU0000001",
        con_id=VTI.con_id,
        action="BUY",
        total_quantity=25.0,
        order_type="LMT",
        lmt_price=289.5,
        tif="GTC",
        outside_rth=True,
        order_ref="cycle-9-leg-2",
        created_at="2026-01-12T15:00:00+00:00",
        status="Submitted",
        filled=5.0,
        completed_time="20260112 15:00:01 UTC",
        completed_status="Filled",
    )
    values.update(changes)
    return SimOrder(**values)


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_open_order_decodes_with_ids_ref_and_status(lib, version, caplog):
    order = sample_order(algo_strategy="Adaptive", algo_params=[("adaptivePriority", "Urgent")])
    [(name, args)] = decode(lib, version, m.open_order(version, order, VTI), caplog)
    order_id, contract, decoded, state = args
    assert name == "openOrder" and order_id == 42
    assert (decoded.clientId, decoded.permId, decoded.orderRef) == (
        3,
        1_000_000_007,
        "cycle-9-leg-2",
    )
    assert (decoded.action, decoded.totalQuantity, decoded.lmtPrice, decoded.tif) == (
        "BUY",
        25.0,
        289.5,
        "GTC",
    )
    assert decoded.outsideRth is True and decoded.algoStrategy == "Adaptive"
    assert state.status == "Submitted" and contract.conId == VTI.con_id


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_completed_order_decodes_with_status_and_time(lib, version, caplog):
    order = sample_order(status="Filled", filled=25.0)
    [(name, args)] = decode(lib, version, m.completed_order(version, order, VTI), caplog)
    _contract, decoded, state = args
    assert name == "completedOrder"
    assert (decoded.permId, decoded.orderRef, decoded.filledQuantity) == (
        1_000_000_007,
        "cycle-9-leg-2",
        25.0,
    )
    assert (state.status, state.completedStatus) == ("Filled", "Filled")


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_exec_details_and_commission_decode(lib, version, caplog):
    execution = SimExecution(
        exec_id="0000abcd.00000001.01.01",
        perm_id=7,
        order_id=42,
        client_id=3,
        account="DU0000001",
        con_id=VTI.con_id,
        side="BOT",
        shares=10.0,
        price=290.01,
        time="2026-01-12T15:00:00+00:00",
        exchange="ARCA",
        cum_qty=10.0,
        avg_price=290.01,
        order_ref="ref",
        commission=1.0,
        commission_currency="USD",
        realized_pnl=None,
    )
    [(_name, args)] = decode(lib, version, m.exec_details(version, -1, execution, VTI), caplog)
    req_id, _contract, decoded = args
    assert (req_id, decoded.execId, decoded.permId, decoded.orderRef) == (
        -1,
        "0000abcd.00000001.01.01",
        7,
        "ref",
    )
    assert decoded.time == dt.datetime(2026, 1, 12, 15, 0, tzinfo=dt.UTC)
    [(_name, (report,))] = decode(lib, version, m.commission_report(execution), caplog)
    assert (report.execId, report.commission, report.currency) == (execution.exec_id, 1.0, "USD")


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_contract_details_decode_with_hours_and_increments(lib, version, caplog):
    fields = m.contract_details(
        version, 5, VTI, "20260112:0400-20260112:2000", "20260112:0930-20260112:1600"
    )
    [(_name, (_req_id, details))] = decode(lib, version, fields, caplog)
    assert details.contract.conId == VTI.con_id
    assert details.contract.primaryExchange == "ARCA"
    assert (details.minTick, details.sizeIncrement, details.timeZoneId) == (0.01, 1.0, "US/Eastern")
    assert details.liquidHours == "20260112:0930-20260112:1600"


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_error_carries_advanced_reject_json_slot(lib, version, caplog):
    [(name, args)] = decode(lib, version, m.error(version, 7, 201, "rejected"), caplog)
    assert name == "error" and args[:3] == (7, 201, "rejected")


@pytest.mark.parametrize(("lib", "version"), CASES)
def test_position_portfolio_and_status_decode(lib, version, caplog):
    [(_, pos)] = decode(lib, version, m.position("DU0000001", VTI, 10.0, 250.0), caplog)
    assert pos[0] == "DU0000001" and pos[2:] == (10.0, 250.0)
    row = m.portfolio_value("DU0000001", VTI, 10.0, 290.0, 2900.0, 250.0, 400.0, 0.0)
    [(_, portfolio)] = decode(lib, version, row, caplog)
    assert portfolio[1:5] == (10.0, 290.0, 2900.0, 250.0)
    [(_, status)] = decode(lib, version, m.order_status(sample_order()), caplog)
    assert status[:3] == (42, "Submitted", 5.0) and status[5] == 1_000_000_007
