"""The example desired_state/ shipped with the repository is valid and says what the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired import validate_directory

EXAMPLE = Path(__file__).resolve().parents[3] / "desired_state"


@pytest.fixture(scope="module")
def example():
    state, diagnostics = validate_directory(EXAMPLE)
    assert diagnostics == []
    assert state is not None
    return state


def test_example_has_two_paper_portfolios(example):
    assert sorted(example.accounts) == ["DU0000001", "DU0000002"]
    assert all(account.startswith("DU") for account in example.accounts)


def test_us_core_holds_vti_bnd_by_weight_and_sgov_by_quantity(example):
    portfolio = example.portfolio_for("DU0000001")
    targets = {t.instrument.key: (t.weight, t.quantity) for t in portfolio.targets}
    assert targets == {"VTI": (0.50, None), "BND": (0.30, None), "SGOV": (None, 100.0)}
    assert portfolio.cash_reserve == pytest.approx(0.05)
    assert (portfolio.band.absolute, portfolio.band.relative) == (0.01, 0.2)
    assert (portfolio.execution.order_type, portfolio.execution.ttl_seconds) == ("LMT", 120)


def test_global_balanced_runs_on_fixed_capital(example):
    portfolio = example.portfolio_for("DU0000002")
    assert portfolio.capital == 50000
    assert {t.instrument.key for t in portfolio.targets} == {"VXUS", "VTI", "TLT", "GLD"}
    assert (portfolio.execution.order_type, portfolio.execution.ttl_seconds) == ("MIDPRICE", 300)


def test_default_policy_and_schedule(example):
    policy = example.risk_policies["default"]
    assert (policy.max_order_notional, policy.max_spread, policy.restricted) == (
        60000,
        0.01,
        ("GME",),
    )
    (schedule,) = example.schedules
    assert (schedule.interval_seconds, schedule.self_heal) == (900, False)


def test_every_example_file_points_editors_at_its_schema():
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        schema = (path.parent / first.split("=", 1)[1]).resolve()
        assert schema.is_file(), f"{path}: {schema}"
