"""Scenario files: the demo, validation errors with file and line, instrument overrides."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.sim import DEMO_ACCOUNTS, ScenarioError, load_scenario


def test_demo_scenario_has_the_documented_accounts_and_fixed_prices():
    demo = load_scenario()
    assert tuple(a.account_id for a in demo.accounts) == DEMO_ACCOUNTS
    first = demo.accounts[0]
    assert first.cash == {"USD": 100000.0}
    assert {(p.symbol, p.quantity) for p in first.positions} == {("VTI", 100), ("AAPL", 20)}
    assert demo.volatility == 0.0


def test_scenario_error_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\naccounts:\n  - id: DU0000001\n    cash: {USD: lots}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert f"{path}:4: /accounts/0/cash/USD" in str(err.value)


@pytest.mark.parametrize("holiday", ["2026-01-19", '"2026-01-19"'])
def test_scenario_dates_may_be_yaml_dates_or_strings(tmp_path, holiday):
    path = tmp_path / "dates.yaml"
    path.write_text(
        f"market:\n  hours: regular\n  holidays: [{holiday}]\n"
        "  earlyCloses: {2026-11-27: 13:00}\n"
        "clock: {start: 2026-01-05T15:00:00Z}\n"
    )
    scenario = load_scenario(path)
    assert scenario.holidays == frozenset({dt.date(2026, 1, 19)})
    assert scenario.early_closes == {dt.date(2026, 11, 27): "13:00"}
    assert scenario.clock_start == dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC)


def test_scenario_mapping_may_hold_date_objects():
    scenario = load_scenario(
        {
            "market": {
                "holidays": [dt.date(2026, 1, 19)],
                "earlyCloses": {dt.date(2026, 11, 27): "13:00"},
            }
        }
    )
    assert scenario.holidays == frozenset({dt.date(2026, 1, 19)})
    assert scenario.early_closes == {dt.date(2026, 11, 27): "13:00"}


def test_scenario_impossible_date_is_named_with_its_line_and_no_python_repr(tmp_path):
    path = tmp_path / "bad-date.yaml"
    path.write_text("market:\n  holidays:\n    - 2026-01-19\n    - 2026-02-30\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert f"{path}:4: /market/holidays/1: " in message and "2026-02-30" in message
    assert "datetime" not in message


def test_scenario_type_errors_show_values_as_written_not_as_python_reprs(tmp_path):
    path = tmp_path / "types.yaml"
    path.write_text(
        "market:\n  holidays: [true]\n  earlyCloses: {2026-11-27: 1300}\n  hours: null\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert f"{path}:2: /market/holidays/0: true is not of type 'string'" in message
    assert f"{path}:3: /market/earlyCloses/2026-11-27: 1300 is not of type 'string'" in message
    assert f"{path}:4: /market/hours: null is not one of" in message
    assert "True" not in message and "None" not in message


@pytest.mark.parametrize(
    ("start", "problem"),
    [
        ("tomorrow", '"tomorrow" is not an ISO 8601 date and time'),
        ('"2026-13-01T00:00:00Z"', "month must be in 1..12"),
        ("2026-01-05T15:00:00", "needs a time zone"),
    ],
)
def test_scenario_bad_clock_start_is_named_with_its_line(tmp_path, start, problem):
    path = tmp_path / "clock.yaml"
    path.write_text(f"seed: 1\nclock:\n  start: {start}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:3: /clock/start: ")
    assert problem in str(err.value)


def test_scenario_duplicate_key_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:2: duplicate key 'seed'"):
        load_scenario(path)


def test_scenario_unknown_field_is_rejected(tmp_path):
    path = tmp_path / "extra.yaml"
    path.write_text("market:\n  volatilty: 0.2\n")
    with pytest.raises(ScenarioError, match="volatilty"):
        load_scenario(path)


def test_scenario_instruments_override_builtins_and_add_new_ones():
    scenario = load_scenario(
        {
            "instruments": [
                {"symbol": "VTI", "price": 300.0, "liquidity": 50},
                {"symbol": "ACME", "price": 12.5, "primaryExchange": "NASDAQ"},
            ],
        }
    )
    universe = scenario.build_universe()
    [vti] = universe.by_symbol("VTI")
    assert (vti.price, vti.liquidity, vti.con_id) == (300.0, 50, 900000001)
    [acme] = universe.by_symbol("ACME")
    assert acme.price == 12.5 and acme.con_id >= 800_000_000


def test_scenario_new_instrument_without_price_is_an_error():
    with pytest.raises(ScenarioError, match="needs a price"):
        load_scenario({"instruments": [{"symbol": "ACME"}]})


def test_scenario_ambiguous_override_asks_for_currency():
    with pytest.raises(ScenarioError, match="several listings"):
        load_scenario({"instruments": [{"symbol": "SHOP", "price": 1.0}]})


def test_importing_the_simulator_is_light_and_never_imports_a_client_library():
    code = (
        "import sys, reconciler.sim; "
        "heavy = [m for m in ('ib_async', 'ib_insync', 'yaml', 'jsonschema', 'asyncio') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
    code = (
        "import sys, reconciler.sim.gateway.server, reconciler.sim.gateway.thread, reconciler.sim.scenario; "
        "print([m for m in ('ib_async', 'ib_insync') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_readme_scenario_example_loads(tmp_path):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    start = readme.index("# yaml-language-server: $schema=schemas/scenario.schema.json")
    example = tmp_path / "readme-scenario.yaml"
    example.write_text(readme[start : readme.index("```", start)], encoding="utf-8")
    scenario = load_scenario(example)
    assert scenario.holidays == frozenset({dt.date(2026, 1, 19)})
    assert scenario.early_closes == {dt.date(2026, 11, 27): "13:00"}
    assert [a.account_id for a in scenario.accounts] == ["DU0000001"]


def test_scenario_faults_of_the_fault_catalogue_set_their_switches():
    from reconciler.sim.faults import Faults

    faults = Faults()
    faults.update(
        {
            "duplicateOrderStatus": True,
            "emptyPositions": ["DU0000001"],
            "lateFillOnCancel": True,
            "unknownOnCancel": True,
            "duplicateIdOnOrder": 2,
        }
    )
    assert faults.duplicate_order_status and faults.late_fill_on_cancel
    assert faults.unknown_on_cancel and faults.duplicate_id_on_order == 2
    assert faults.positions_hidden("DU0000001") and not faults.positions_hidden("DU0000002")
    faults.clear()
    assert not faults.positions_hidden("DU0000001") and faults.duplicate_id_on_order is None
