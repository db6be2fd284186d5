"""Configuration that cannot be silently wrong, end to end: `reconcile plan`/`apply` against
the embedded simulator (`--gateway sim`) warn about an `EXEC_RISK_MAX_*` that is set but not
applied (stderr for text, the JSON plan, the Markdown comment, the plan file) and about a
typo'd variable (environment or `.env`), and a bad value stops the command naming it."""

from __future__ import annotations

import json

import pytest
from e2e import Cli, base_env, placed_order_refs

from reconciler.model.plan import document_orders

OVERRIDE = {"EXEC_RISK_MAX_ORDER_NOTIONAL": "5000"}
NOT_APPLIED = "EXEC_RISK_MAX_ORDER_NOTIONAL=5000 is set but NOT applied: EXEC_RISK_ENABLED"
TYPO_HINT = "ORDER_ENABLED ({where}) is not a variable ib-reconciler reads"


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path, "sim", base_env(tmp_path))


def orders(plan: dict) -> list[dict]:
    return document_orders(plan)


def test_an_override_left_off_is_a_warning_in_the_json_plan_and_the_plan_file(
    cli, desired_dir, tmp_path
):
    out = tmp_path / "plan.json"
    result = cli("plan", str(desired_dir), "--format", "json", "--out", str(out), env=OVERRIDE)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    # Not applied: orders far above 5,000 are planned, and the plan says why.
    assert max(o["est_notional"] for o in orders(plan)) > 5000
    assert len(plan["warnings"]) == 1 and plan["warnings"][0].startswith(NOT_APPLIED)
    assert json.loads(out.read_text())["warnings"] == plan["warnings"]
    assert f"warning: {NOT_APPLIED}" in result.stderr


def test_an_override_left_off_is_a_warning_on_stderr_with_the_text_plan(cli, desired_dir):
    result = cli("plan", str(desired_dir), env=OVERRIDE)
    assert result.returncode == 0, result.stderr
    assert f"warning: {NOT_APPLIED} is unset" in result.stderr
    assert "Plan:" in result.stdout and NOT_APPLIED not in result.stdout


def test_an_override_left_off_is_a_warning_in_the_markdown_comment(cli, desired_dir):
    env = {**OVERRIDE, "EXEC_RISK_ENABLED": "false"}
    result = cli("plan", str(desired_dir), "--format", "markdown", env=env)
    assert result.returncode == 0, result.stderr
    assert "> [!WARNING]" in result.stdout
    assert f"> - {NOT_APPLIED}=false" in result.stdout


def test_an_applied_override_is_no_warning_and_binds(cli, desired_dir):
    env = {**OVERRIDE, "EXEC_RISK_ENABLED": "true"}
    result = cli("plan", str(desired_dir), "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["warnings"] == [] and "warning:" not in result.stderr
    assert orders(plan) and all(o["est_notional"] <= 5000 for o in orders(plan))


def test_a_typo_in_dotenv_is_warned_with_the_variable_meant_and_apply_stays_a_dry_run(
    cli, desired_dir, tmp_path
):
    (tmp_path / ".env").write_text("ORDER_ENABLED=true\n", encoding="utf-8")
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert f"warning: {TYPO_HINT.format(where='in .env')}" in result.stderr
    assert "did you mean ORDERS_ENABLED?" in result.stderr
    assert "DRY RUN" in result.stderr


def test_a_typo_in_the_environment_is_warned_in_the_plan_too(cli, desired_dir):
    result = cli("plan", str(desired_dir), "--format", "json", env={"ORDER_ENABLED": "true"})
    assert result.returncode == 0, result.stderr
    (warning,) = json.loads(result.stdout)["warnings"]
    assert warning.startswith(TYPO_HINT.format(where="in the environment"))
    assert warning.endswith("did you mean ORDERS_ENABLED?")
    assert f"warning: {warning}" in result.stderr


def test_the_environment_beats_dotenv_even_to_disable_orders(tmp_path, desired_dir, sim):
    cli = Cli(tmp_path, f"{sim.host}:{sim.port}", base_env(tmp_path))
    (tmp_path / ".env").write_text("ORDERS_ENABLED=true\n", encoding="utf-8")
    result = cli("apply", "--dir", str(desired_dir), "--auto-approve", env={"ORDERS_ENABLED": ""})
    assert result.returncode == 0, result.stderr
    assert "DRY RUN" in result.stderr
    assert placed_order_refs(sim) == []


@pytest.mark.parametrize(
    ("env", "dotenv", "message"),
    [
        ({"IB_GATEWAY_PORT": "40o2"}, "", "error: IB_GATEWAY_PORT='40o2' is not a whole number"),
        (
            {},
            "TRADING_MODE=real\n",
            "error: TRADING_MODE='real' must be paper or live (set in .env)",
        ),
    ],
)
def test_a_bad_value_stops_the_plan_naming_the_variable(
    cli, desired_dir, tmp_path, env, dotenv, message
):
    (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    result = cli("plan", str(desired_dir), env=env)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""
