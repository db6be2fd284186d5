"""Safety gates, one rule at a time (values in, verdicts out)."""

from reconciler.apply.gates import GateInputs, evaluate_gates, refused
from reconciler.model.settings import Settings


def inputs(settings=None, **kw):
    base = dict(
        settings=settings or Settings(),
        accounts=["DU0000001"],
        managed_accounts=["DU0000001", "DU0000002"],
        git_commit="a" * 40,
        git_dirty=False,
        halt_reason=None,
        trading_states={"DU0000001": "ACTIVE"},
        file_exists=lambda _p: False,
    )
    base.update(kw)
    return GateInputs(**base)


def refused_names(i):
    return [g.name for g in refused(evaluate_gates(i))]


def test_defaults_in_paper_pass_every_gate():
    assert refused_names(inputs()) == []


def test_orders_disabled_is_not_a_refusal_but_says_dry_run():
    results = {g.name: g for g in evaluate_gates(inputs())}
    assert results["ORDERS_ENABLED"].passed
    assert "dry run" in results["ORDERS_ENABLED"].detail


def test_live_without_override_file_is_refused():
    live = Settings(trading_mode="live", orders_enabled=True, allowed_accounts=("U0000001",))
    names = refused_names(
        inputs(
            live,
            accounts=["U0000001"],
            managed_accounts=["U0000001"],
            trading_states={"U0000001": "ACTIVE"},
        )
    )
    assert names == ["LIVE_TRADING_OVERRIDE_FILE"]


def test_live_with_override_file_allowlist_live_account_and_clean_git_passes():
    live = Settings(
        trading_mode="live",
        orders_enabled=True,
        allowed_accounts=("U0000001",),
        live_override_file="/override",
    )
    i = inputs(
        live,
        accounts=["U0000001"],
        managed_accounts=["U0000001"],
        trading_states={"U0000001": "ACTIVE"},
        file_exists=lambda p: p == "/override",
    )
    assert refused_names(i) == []


def test_live_mode_with_paper_account_is_refused():
    live = Settings(trading_mode="live", allowed_accounts=("DU0000001",), live_override_file="/o")
    assert "ACCOUNT_KIND" in refused_names(inputs(live, file_exists=lambda _p: True))


def test_paper_mode_with_live_account_is_refused():
    names = refused_names(inputs(accounts=["U0000001"], managed_accounts=["U0000001"]))
    assert names == ["ACCOUNT_KIND"]


def test_live_without_allowlist_is_refused():
    live = Settings(trading_mode="live", live_override_file="/o")
    names = refused_names(
        inputs(
            live, accounts=["U0000001"], managed_accounts=["U0000001"], file_exists=lambda _p: True
        )
    )
    assert "RECONCILER_ALLOWED_ACCOUNTS" in names


def test_account_outside_allowlist_is_refused_in_paper_too():
    s = Settings(allowed_accounts=("DU0000002",))
    assert refused_names(inputs(s)) == ["RECONCILER_ALLOWED_ACCOUNTS"]


def test_account_not_managed_by_gateway_is_refused_naming_both():
    results = evaluate_gates(inputs(managed_accounts=["DU0000009"]))
    bad = refused(results)
    assert [g.name for g in bad] == ["ACCOUNT_MANAGED"]
    assert "DU0000001" in bad[0].detail and "DU0000009" in bad[0].detail


def test_out_of_band_halt_is_refused_with_its_reason():
    bad = refused(evaluate_gates(inputs(halt_reason="fat finger on desk")))
    assert [g.name for g in bad] == ["TRADING_STATE"]
    assert "fat finger" in bad[0].detail


def test_risk_policy_halted_is_refused():
    names = refused_names(inputs(trading_states={"DU0000001": "HALTED"}))
    assert names == ["TRADING_STATE"]


def test_dirty_git_is_allowed_in_paper_by_default_but_refused_when_required():
    assert refused_names(inputs(git_dirty=True)) == []
    strict = Settings(require_clean_git=True)
    assert refused_names(inputs(strict, git_dirty=True)) == ["DESIRED_STATE_COMMITTED"]
    assert refused_names(inputs(strict, git_commit=None)) == ["DESIRED_STATE_COMMITTED"]


def test_live_always_requires_clean_git():
    live = Settings(trading_mode="live", allowed_accounts=("U0000001",), live_override_file="/o")
    i = inputs(
        live,
        accounts=["U0000001"],
        managed_accounts=["U0000001"],
        git_dirty=True,
        file_exists=lambda _p: True,
    )
    assert refused_names(i) == ["DESIRED_STATE_COMMITTED"]
