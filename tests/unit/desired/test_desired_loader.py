"""Loading a directory: every field form the language accepts, file layout, lockfile, warnings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import load_desired_state, validate_directory
from reconciler.model.desired import Band, ExecutionPolicy, Instrument, TradingWindow

RISK = """
apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {name: default}
spec: {maxOrderNotional: 10000}
"""


@pytest.fixture(autouse=True)
def run_in_tmp_path(tmp_path, monkeypatch):
    """Validate where the files are, as an operator would: diagnostics name files relative to
    the working directory."""
    monkeypatch.chdir(tmp_path)


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


def portfolio_yaml(spec: str, name: str = "core", account: str = "DU0000001") -> str:
    return (
        f"apiVersion: reconciler/v1\nkind: Portfolio\nmetadata: {{name: {name}}}\n"
        f"spec:\n  account: {account}\n"
        + textwrap.indent(textwrap.dedent(spec).strip(), "  ")
        + "\n"
    )


def load_one(tmp_path: Path, spec: str):
    write(tmp_path, {"p.yaml": portfolio_yaml(spec), "risk.yaml": RISK})
    (portfolio,) = load_desired_state(tmp_path).portfolios
    return portfolio


def test_bare_symbol_is_a_us_stock_on_smart(tmp_path):
    portfolio = load_one(tmp_path, "targets: [{symbol: VTI, weight: 55%}]")
    (target,) = portfolio.targets
    assert target.instrument == Instrument("VTI", "STK", "SMART", None, "USD", None)
    assert (target.weight, target.quantity) == (pytest.approx(0.55), None)


def test_instrument_as_text_is_the_same_as_a_bare_symbol(tmp_path):
    portfolio = load_one(tmp_path, "targets: [{instrument: VTI, weight: 0.55}]")
    assert portfolio.targets[0].instrument == Instrument("VTI")
    assert portfolio.targets[0].weight == pytest.approx(0.55)


def test_instrument_mapping_pins_every_contract_field(tmp_path):
    portfolio = load_one(
        tmp_path,
        """
        targets:
          - instrument: {symbol: SHOP, secType: STK, exchange: SMART, primaryExchange: TSE,
                         currency: CAD, conId: 195014116}
            quantity: 12.5
        """,
    )
    (target,) = portfolio.targets
    assert target.instrument == Instrument("SHOP", "STK", "SMART", "TSE", "CAD", 195014116)
    assert target.instrument.key == "SHOP:STK:CAD"
    assert (target.weight, target.quantity) == (None, 12.5)


def test_same_symbol_in_two_currencies_is_two_instruments(tmp_path):
    portfolio = load_one(
        tmp_path,
        """
        targets:
          - {symbol: SHOP, weight: 10%}
          - {instrument: {symbol: SHOP, currency: CAD}, weight: 10%}
        """,
    )
    assert [t.instrument.key for t in portfolio.targets] == ["SHOP", "SHOP:STK:CAD"]


def test_every_portfolio_field_is_read_into_model_units(tmp_path):
    portfolio = load_one(
        tmp_path,
        """
        targets: [{symbol: VTI, weight: 60%}, {symbol: BND, weight: 0.35}]
        cashReserve: 5%
        capital: 25000.5
        band: {relative: 25%}
        minTradeNotional: 100
        unmanaged: liquidate
        sells: buyOnly
        execution: {orderType: ADAPTIVE, limitOffsetBps: 2.5, timeInForce: GTC, ttl: 1h30m,
                    outsideRth: true}
        riskPolicy: default
        """,
    )
    assert portfolio.cash_reserve == pytest.approx(0.05)
    assert portfolio.capital == 25000.5
    assert portfolio.band == Band(absolute=None, relative=pytest.approx(0.25))
    assert portfolio.min_trade_notional == 100
    assert (portfolio.unmanaged, portfolio.sells, portfolio.buy_only) == (
        "liquidate",
        "buyOnly",
        True,
    )
    assert portfolio.execution == ExecutionPolicy("ADAPTIVE", 2.5, "GTC", 5400.0, True)
    assert portfolio.source.file == "p.yaml"
    assert portfolio.targets[1].source.line == 6


def test_unset_portfolio_fields_take_the_documented_defaults(tmp_path):
    portfolio = load_one(tmp_path, "targets: [{symbol: VTI, weight: 100%}]")
    assert portfolio.cash_reserve == 0.0
    assert portfolio.capital is None
    assert portfolio.band == Band(absolute=0.01, relative=None)
    assert portfolio.execution == ExecutionPolicy()
    assert portfolio.risk_policy == "default"
    assert (portfolio.unmanaged, portfolio.sells) == ("ignore", "allowed")


def test_weights_plus_cash_reserve_of_exactly_100_percent_are_accepted(tmp_path):
    portfolio = load_one(
        tmp_path,
        "targets: [{symbol: VTI, weight: 33.3%}, {symbol: BND, weight: 0.567}]\ncashReserve: 10%",
    )
    assert sum(t.weight for t in portfolio.targets) + portfolio.cash_reserve == pytest.approx(1.0)


def test_quantity_targets_do_not_count_toward_the_100_percent(tmp_path):
    portfolio = load_one(
        tmp_path, "targets: [{symbol: VTI, weight: 100%}, {symbol: SGOV, quantity: 1000}]"
    )
    assert len(portfolio.targets) == 2


def test_risk_policy_fields_are_read_into_model_units(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]\nriskPolicy: tight"),
            "risk.yaml": """
                apiVersion: reconciler/v1
                kind: RiskPolicy
                metadata: {name: tight}
                spec:
                  tradingState: REDUCING
                  maxOrderNotional: 5000
                  maxPositionNotional: 15000.5
                  maxLeverage: 1.5
                  maxOrdersPerCycle: 3
                  maxCycleTurnover: 10%
                  maxDailyNotional: 20000
                  maxPriceAge: 2m
                  maxSpread: 50bps
                  restricted: [GME, "SHOP:STK:CAD"]
                  onBreach: deny
            """,
        },
    )
    policy = load_desired_state(tmp_path).risk_policies["tight"]
    assert policy.trading_state == "REDUCING"
    assert (policy.max_order_notional, policy.max_position_notional) == (5000, 15000.5)
    assert (policy.max_leverage, policy.max_orders_per_cycle) == (1.5, 3)
    assert policy.max_cycle_turnover == pytest.approx(0.10)
    assert policy.max_daily_notional == 20000
    assert policy.max_price_age_seconds == 120
    assert policy.max_spread == pytest.approx(0.005)
    assert policy.restricted == ("GME", "SHOP:STK:CAD")
    assert policy.on_breach == "deny"


def test_risk_policy_without_limits_is_valid_with_a_warning(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "risk.yaml": "apiVersion: reconciler/v1\nkind: RiskPolicy\n"
            "metadata: {name: default}\nspec: {}\n",
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert state is not None
    policy = state.risk_policies["default"]
    assert (policy.trading_state, policy.on_breach, policy.max_order_notional) == (
        "ACTIVE",
        "clip",
        None,
    )
    assert [(d.code, d.severity, d.file) for d in diagnostics] == [
        ("W_NO_ORDER_LIMIT", "warning", "risk.yaml")
    ]


def test_schedule_with_cron_window_and_accounts(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "risk.yaml": RISK,
            "schedule.yml": """
                apiVersion: reconciler/v1
                kind: Schedule
                metadata: {name: market-hours}
                spec:
                  cron: "*/15 9-16 * * mon-fri"
                  timezone: Europe/London
                  window: {avoidOpenMinutes: 15}
                  selfHeal: true
                  accounts: [DU0000001]
            """,
        },
    )
    (schedule,) = load_desired_state(tmp_path).schedules
    assert (schedule.cron, schedule.interval_seconds) == ("*/15 9-16 * * mon-fri", None)
    assert schedule.timezone == "Europe/London"
    assert schedule.window == TradingWindow(avoid_open_minutes=15, avoid_close_minutes=0)
    assert (schedule.self_heal, schedule.accounts) == (True, ("DU0000001",))


def test_short_interval_is_valid_with_a_warning(tmp_path):
    write(
        tmp_path,
        {
            "all.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]")
            + "---\n"
            + RISK.lstrip()
            + "---\napiVersion: reconciler/v1\nkind: Schedule\n"
            "metadata: {name: fast}\nspec: {interval: 30s}\n",
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert state is not None
    assert state.schedules[0].interval_seconds == 30
    assert state.schedules[0].timezone == "America/New_York"
    assert state.schedules[0].self_heal is False
    assert [(d.code, d.line) for d in diagnostics] == [("W_SHORT_INTERVAL", 16)]


def test_any_layout_is_read_and_hidden_or_non_yaml_files_are_skipped(tmp_path):
    write(
        tmp_path,
        {
            "deep/er/p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "r.yml": RISK,
            ".hidden/broken.yaml": "this: is: not: valid",
            ".draft.yaml": "kind: Nonsense",
            "README.md": "kind: Nonsense",
            "notes.txt": ":::",
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert diagnostics == []
    assert [p.source.file for p in state.portfolios] == ["deep/er/p.yaml"]


def test_problems_in_several_files_are_all_reported_in_one_run(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 55}]"),
            "b.yaml": portfolio_yaml("targets: [{symbol: BND, weight: yes}]", "b", "DU0000002"),
            "c.yaml": RISK + "  extra: 1\n",
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert state is None
    assert [(d.file, d.code) for d in diagnostics] == [
        ("a.yaml", "E_WEIGHT_NOT_FRACTION"),
        ("b.yaml", "E_YAML_BOOLEAN"),
        ("c.yaml", "E_YAML_SYNTAX"),
    ]


def test_unknown_reference_is_not_reported_when_another_file_could_not_be_read(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "risk.yaml": RISK + "spec: [broken",
        },
    )
    _, diagnostics = validate_directory(tmp_path)
    assert [d.code for d in diagnostics] == ["E_YAML_SYNTAX"]


def test_semantic_checks_report_together_with_schema_errors_elsewhere(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": portfolio_yaml(
                "targets: [{symbol: VTI, weight: 80%}, {symbol: BND, weight: 30%}]"
            ),
            "b.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 1%}]\nsells: never", "b"),
            "risk.yaml": RISK,
        },
    )
    _, diagnostics = validate_directory(tmp_path)
    assert [(d.file, d.code) for d in diagnostics] == [
        ("a.yaml", "E_WEIGHTS_EXCEED_100"),
        ("b.yaml", "E_DUPLICATE_ACCOUNT"),
        ("b.yaml", "E_ENUM_VALUE"),
    ]


def test_weights_over_100_message_names_the_sum(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml(
                "targets: [{symbol: VTI, weight: 60%}, {symbol: BND, weight: 0.4}]\ncashReserve: 5%"
            ),
            "risk.yaml": RISK,
        },
    )
    _, diagnostics = validate_directory(tmp_path)
    (diagnostic,) = diagnostics
    assert diagnostic.code == "E_WEIGHTS_EXCEED_100"
    assert diagnostic.message == (
        "target weights add up to 100% and cashReserve is 5%: 105% is more than 100%"
    )


def test_lockfile_is_read_into_the_state_and_not_as_a_document(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "risk.yaml": RISK,
            "instruments.lock.yaml": """
                apiVersion: reconciler/v1
                kind: InstrumentLock
                instruments:
                  VTI: {conId: 12345, symbol: VTI, secType: STK, exchange: SMART,
                        primaryExchange: ARCA, currency: USD, minTick: 0.01, sizeIncrement: 1}
            """,
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert diagnostics == []
    assert state.lock["VTI"].con_id == 12345
    assert state.lock["VTI"].primary_exchange == "ARCA"


def test_lockfile_below_the_top_is_ignored_with_a_warning(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"),
            "risk.yaml": RISK,
            "sub/instruments.lock.yaml": "anything: at all",
        },
    )
    state, diagnostics = validate_directory(tmp_path)
    assert state is not None and state.lock == {}
    assert [(d.code, d.file) for d in diagnostics] == [
        ("W_LOCKFILE_IGNORED", "sub/instruments.lock.yaml")
    ]


def test_missing_directory_is_a_diagnostic_not_an_exception(tmp_path):
    state, diagnostics = validate_directory(tmp_path / "nope")
    assert state is None
    assert [d.code for d in diagnostics] == ["E_DIRECTORY_NOT_FOUND"]


def test_a_file_instead_of_a_directory_is_a_diagnostic(tmp_path):
    path = write(tmp_path, {"p.yaml": RISK}) / "p.yaml"
    state, diagnostics = validate_directory(path)
    assert state is None
    assert [d.code for d in diagnostics] == ["E_NOT_A_DIRECTORY"]


def test_directory_with_only_risk_policies_is_valid_with_a_warning(tmp_path):
    write(tmp_path, {"risk.yaml": RISK})
    state, diagnostics = validate_directory(tmp_path)
    assert state is not None and state.portfolios == ()
    assert [d.code for d in diagnostics] == ["W_NO_PORTFOLIOS"]


def test_desired_state_helpers_find_portfolio_and_policy(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]", "a", "DU0000001"),
            "b.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]", "b", "DU0000002"),
            "risk.yaml": RISK,
        },
    )
    state = load_desired_state(tmp_path)
    assert state.accounts == ("DU0000001", "DU0000002")
    assert state.portfolio_for("DU0000002").name == "b"
    assert state.portfolio_for("DU0000009") is None
    assert state.policy_for(state.portfolios[0]).name == "default"


_FRAGMENTS = [
    "apiVersion: reconciler/v1\n",
    "kind: Portfolio\n",
    "kind: RiskPolicy\n",
    "kind: Schedule\n",
    "metadata: {name: core}\n",
    "spec:\n",
    "  account: DU0000001\n",
    "  targets:\n",
    "    - {symbol: VTI, weight: 55%}\n",
    "    - {symbol: NO, quantity: 012}\n",
    "  interval: 12:30\n",
    "  cron: '61 * * *'\n",
    "  maxSpread: 1e3\n",
    "---\n",
    "\t",
    "&a ",
    "*a\n",
    "!!python/object:os.system\n",
    "  restricted: [GME, GME]\n",
    "{",
    "]",
    ": ",
    "- ",
    "  band: {}\n",
    "  riskPolicy: other\n",
    "\xff",
    "\x00",
    "  timezone: Nowhere/City\n",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join),
    )
)
def test_validation_never_raises_whatever_the_file_holds(tmp_path, text):
    (tmp_path / "fuzz.yaml").write_bytes(text.encode("utf-8", "surrogatepass"))
    state, diagnostics = validate_directory(tmp_path)
    assert state is not None or any(d.severity == "error" for d in diagnostics)
    for diagnostic in diagnostics:
        assert diagnostic.code.startswith(("E_", "W_")) and diagnostic.message


def test_diagnostics_name_files_relative_to_the_working_directory(tmp_path):
    write(tmp_path / "repo" / "desired_state", {"sub/p.yaml": RISK + "  extra: 1\n"})
    _, diagnostics = validate_directory(tmp_path / "repo" / "desired_state")
    assert [d.file for d in diagnostics] == ["repo/desired_state/sub/p.yaml"]
    _, diagnostics = validate_directory("repo/desired_state", base=tmp_path / "repo")
    assert [d.file for d in diagnostics] == ["desired_state/sub/p.yaml"]


def test_diagnostics_outside_the_working_directory_name_absolute_paths(tmp_path):
    write(tmp_path / "elsewhere", {"p.yaml": RISK + "  extra: 1\n"})
    (tmp_path / "here").mkdir()
    _, diagnostics = validate_directory(tmp_path / "elsewhere", base=tmp_path / "here")
    assert [d.file for d in diagnostics] == [(tmp_path / "elsewhere" / "p.yaml").as_posix()]


def test_messages_that_name_another_file_name_it_as_diagnostics_do(tmp_path):
    write(
        tmp_path / "ds",
        {
            "a.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]", "first"),
            "b.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]", "second"),
            "risk.yaml": RISK,
        },
    )
    _, diagnostics = validate_directory("ds")
    (diagnostic,) = diagnostics
    assert (diagnostic.file, diagnostic.code) == ("ds/b.yaml", "E_DUPLICATE_ACCOUNT")
    assert "(ds/a.yaml)" in diagnostic.message


def test_source_references_in_the_model_stay_relative_to_the_directory(tmp_path):
    write(
        tmp_path / "ds",
        {"p/p.yaml": portfolio_yaml("targets: [{symbol: VTI, weight: 50%}]"), "risk.yaml": RISK},
    )
    state = load_desired_state("ds")
    assert state.portfolios[0].source.file == "p/p.yaml"


def test_misspelled_weight_is_reported_without_its_missing_amount_consequence(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml(
                """
                targets:
                  - {symbol: VTI, weight: 50%}
                  - {symbol: BND, weigth: 30%}
                  - symbol: TLT
                    wieght: 5%
                """
            ),
            "risk.yaml": RISK,
        },
    )
    _, diagnostics = validate_directory(tmp_path)
    assert [(d.code, d.line, d.pointer) for d in diagnostics] == [
        ("E_UNKNOWN_FIELD", 8, "/spec/targets/1/weigth"),
        ("E_UNKNOWN_FIELD", 10, "/spec/targets/2/wieght"),
    ]
    assert "did you mean 'weight'?" in diagnostics[0].message


def test_an_unknown_field_without_a_close_name_keeps_the_missing_field_error(tmp_path):
    write(
        tmp_path,
        {"p.yaml": portfolio_yaml("targets: [{symbol: VTI, share: 30%}]"), "risk.yaml": RISK},
    )
    _, diagnostics = validate_directory(tmp_path)
    assert sorted(d.code for d in diagnostics) == ["E_TARGET_AMOUNT", "E_UNKNOWN_FIELD"]


def test_a_misspelling_does_not_hide_a_problem_the_rename_would_not_fix(tmp_path):
    write(
        tmp_path,
        {
            "p.yaml": portfolio_yaml("targets: [{weigth: 30%}]"),
            "risk.yaml": RISK,
        },
    )
    _, diagnostics = validate_directory(tmp_path)
    assert [d.code for d in diagnostics] == ["E_UNKNOWN_FIELD", "E_TARGET_INSTRUMENT"]


def test_on_one_line_the_cause_comes_before_its_consequence(tmp_path):
    write(
        tmp_path,
        {"p.yaml": portfolio_yaml("targets: [{symbol: VTI, share: 30%}]"), "risk.yaml": RISK},
    )
    _, diagnostics = validate_directory(tmp_path)
    assert [(d.code, d.line) for d in diagnostics] == [
        ("E_UNKNOWN_FIELD", 6),
        ("E_TARGET_AMOUNT", 6),
    ]
    assert diagnostics[0].column > diagnostics[1].column  # column alone would say otherwise
