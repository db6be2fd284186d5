"""Scenario files: the demo, validation errors with file and line, instrument overrides."""

from __future__ import annotations

import subprocess
import sys

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
    scenario = load_scenario({
        "instruments": [
            {"symbol": "VTI", "price": 300.0, "liquidity": 50},
            {"symbol": "ACME", "price": 12.5, "primaryExchange": "NASDAQ"},
        ],
    })
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
    code = ("import sys, reconciler.sim; "
            "heavy = [m for m in ('ib_async', 'ib_insync', 'yaml', 'jsonschema', 'asyncio') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
    code = ("import sys, reconciler.sim.server, reconciler.sim.scenario; "
            "print([m for m in ('ib_async', 'ib_insync') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
