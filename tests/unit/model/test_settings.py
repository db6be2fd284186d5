"""Settings from the environment and `.env` (pydantic-settings): defaults, precedence, the
variables' quirks kept, errors naming the variable, and the warnings a configuration that
loads may still deserve (a typo'd variable, a risk override set but not applied)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.model.settings import (
    ENV_VARS,
    ENVIRONMENT_ONLY,
    KNOWN_VARIABLES,
    PREFIXES,
    RISK_OVERRIDES,
    RISK_SWITCH,
    Settings,
    SettingsError,
    default_state_dir,
    load_settings,
    settings_warnings,
    unapplied_risk_overrides,
    unknown_variable_warnings,
)

REPO = Path(__file__).resolve().parents[3]


def dotenv(tmp_path: Path, text: str) -> str:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- values and precedence


def test_without_any_variable_the_settings_are_the_safe_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no legacy ./.reconciler decides the state directory
    state_dir, _ = default_state_dir({}, legacy_exists=False)
    assert load_settings({}, dotenv_path=None) == Settings(state_dir=state_dir)
    s = Settings()
    assert (s.trading_mode, s.orders_enabled, s.gateway_port, s.client_id) == (
        "paper",
        False,
        4002,
        17,
    )


def test_precedence_is_flags_then_environment_then_dotenv_then_defaults(tmp_path):
    path = dotenv(tmp_path, "IB_CLIENT_ID=5\nIB_GATEWAY_PORT=4001\nIB_GATEWAY_HOST=gw.example\n")
    settings = load_settings({"IB_CLIENT_ID": "9", "IB_GATEWAY_PORT": "7497"}, dotenv_path=path)
    assert settings.client_id == 9  # environment over .env
    assert settings.gateway_port == 7497
    assert settings.gateway_host == "gw.example"  # .env over the default
    assert settings.operator_client_id == 90  # the default
    flagged = settings.with_overrides(client_id=3, gateway_port=None)
    assert flagged.client_id == 3  # a flag over everything
    assert flagged.gateway_port == 7497  # an absent flag changes nothing


def test_an_empty_variable_in_the_environment_still_beats_a_dotenv_value(tmp_path):
    path = dotenv(tmp_path, "ORDERS_ENABLED=true\nRECONCILER_ALLOWED_ACCOUNTS=DU0000001\n")
    assert load_settings({}, dotenv_path=path).orders_enabled is True
    settings = load_settings(
        {"ORDERS_ENABLED": "", "RECONCILER_ALLOWED_ACCOUNTS": ""}, dotenv_path=path
    )
    assert settings.orders_enabled is False
    assert settings.allowed_accounts == ()


def test_values_are_read_with_their_documented_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no legacy ./.reconciler decides the state directory
    settings = load_settings(
        {
            "IB_GATEWAY_HOST": "  ",
            "IB_GATEWAY_PORT": " 4001 ",
            "IB_MASTER_CLIENT_ID": "0",
            "IB_CONNECT_TIMEOUT": "0",
            "TRADING_MODE": " Live ",
            "ORDERS_ENABLED": "ON",
            "RECONCILER_REQUIRE_CLEAN_GIT": "1",
            "RECONCILER_ALLOWED_ACCOUNTS": " DU0000001, ,DU0000002,",
            "LIVE_TRADING_OVERRIDE_FILE": "",
            "RECONCILER_STATE_DIR": "",
            "RECONCILER_DB_URL": "sqlite:///x.db",
        },
        dotenv_path=None,
    )
    assert settings.gateway_host == "127.0.0.1"
    assert settings.gateway_port == 4001
    assert settings.master_client_id == 0
    assert settings.connect_timeout == 10.0  # 0 means the default
    assert settings.trading_mode == "live" and settings.is_live
    assert settings.orders_enabled is True and settings.require_clean_git is True
    assert settings.allowed_accounts == ("DU0000001", "DU0000002")
    assert settings.live_override_file is None
    assert settings.state_dir == default_state_dir({}, legacy_exists=False)[0]
    assert settings.effective_db_url == "sqlite:///x.db"


@pytest.mark.parametrize("word", ["false", "no", "off", "0", "", "FALSE"])
def test_false_words_disable_orders(word):
    assert load_settings({"ORDERS_ENABLED": word}, dotenv_path=None).orders_enabled is False


def test_risk_variables_are_kept_as_written_from_both_sources_environment_first(tmp_path):
    path = dotenv(tmp_path, "EXEC_RISK_ENABLED=true\nEXEC_RISK_MAX_LEVERAGE=1.2\n")
    settings = load_settings({"EXEC_RISK_MAX_LEVERAGE": "1.1"}, dotenv_path=path)
    assert dict(settings.risk_env) == {"EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_LEVERAGE": "1.1"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IB_GATEWAY_PORT": "40o2"}, "IB_GATEWAY_PORT='40o2' is not a whole number"),
        ({"IB_GATEWAY_PORT": "70000"}, "IB_GATEWAY_PORT='70000'"),
        ({"IB_CLIENT_ID": "1.5"}, "IB_CLIENT_ID='1.5' is not a whole number"),
        ({"IB_MASTER_CLIENT_ID": "x"}, "IB_MASTER_CLIENT_ID='x' is not a whole number"),
        ({"IB_CONNECT_TIMEOUT": "-1"}, "IB_CONNECT_TIMEOUT='-1' must be a finite number >= 0"),
        ({"IB_CONNECT_TIMEOUT": "inf"}, "IB_CONNECT_TIMEOUT='inf' must be a finite number"),
        ({"TRADING_MODE": "demo"}, "TRADING_MODE='demo' must be paper or live"),
        ({"ORDERS_ENABLED": "maybe"}, "ORDERS_ENABLED='maybe' is not a boolean"),
        ({"ORDERS_ENABLED": "y"}, "ORDERS_ENABLED='y' is not a boolean"),
        ({"RECONCILER_REQUIRE_CLEAN_GIT": "t"}, "RECONCILER_REQUIRE_CLEAN_GIT='t' is not"),
    ],
)
def test_a_value_that_does_not_parse_raises_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(env, dotenv_path=None)


def test_every_bad_variable_is_named_at_once_and_dotenv_values_say_so(tmp_path):
    path = dotenv(tmp_path, "IB_CLIENT_ID=seventeen\n")
    with pytest.raises(SettingsError) as caught:
        load_settings({"TRADING_MODE": "real"}, dotenv_path=path)
    text = str(caught.value)
    assert "TRADING_MODE='real' must be paper or live" in text
    assert f"IB_CLIENT_ID='seventeen' is not a whole number (set in {path})" in text


# ---------------------------------------------------------------- unknown variables


def test_a_typo_in_the_environment_is_warned_naming_the_closest_known_variable():
    settings = load_settings({"ORDER_ENABLED": "true"}, dotenv_path=None)
    assert settings.orders_enabled is False  # the typo changes nothing...
    (warning,) = settings_warnings(settings)  # ...but it is not silent
    assert warning.startswith("ORDER_ENABLED (in the environment) is not a variable")
    assert warning.endswith("did you mean ORDERS_ENABLED?")


def test_a_typo_in_the_dotenv_file_is_warned_naming_the_file_and_the_closest_variable(tmp_path):
    path = dotenv(tmp_path, "ORDER_ENABLED=true\nIB_GATEWAY_POST=4001\n")
    warnings = settings_warnings(load_settings({}, dotenv_path=path))
    assert warnings == [
        f"IB_GATEWAY_POST (in {path}) is not a variable ib-reconciler reads, so it has no "
        "effect; did you mean IB_GATEWAY_PORT?",
        f"ORDER_ENABLED (in {path}) is not a variable ib-reconciler reads, so it has no "
        "effect; did you mean ORDERS_ENABLED?",
    ]


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("EXEC_RISK_ENABLE", "EXEC_RISK_ENABLED"),
        ("EXEC_RISK_MAX_ORDER_NOTIONALS", "EXEC_RISK_MAX_ORDER_NOTIONAL"),
        ("RECONCILER_ALLOWED_ACCOUNT", "RECONCILER_ALLOWED_ACCOUNTS"),
        ("RECONCILE_STATE_DIR", "RECONCILER_STATE_DIR"),
        ("TRADING_MOD", "TRADING_MODE"),
        ("LIVE_TRADING_OVERIDE_FILE", "LIVE_TRADING_OVERRIDE_FILE"),
        ("IB_CLIENTID", "IB_CLIENT_ID"),
        ("ORDERS_ENABLE", "ORDERS_ENABLED"),
    ],
)
def test_near_misses_of_every_prefix_suggest_the_variable_meant(name, meant):
    (warning,) = unknown_variable_warnings([name])
    assert warning.startswith(f"{name} (in the environment)")
    assert warning.endswith(f"did you mean {meant}?")


def test_a_lowercase_name_is_warned_that_names_are_case_sensitive():
    (warning,) = unknown_variable_warnings(["orders_enabled"])
    assert "case-sensitive: did you mean ORDERS_ENABLED?" in warning


def test_an_unknown_variable_with_our_prefix_and_no_close_name_still_warns():
    (warning,) = unknown_variable_warnings(["IB_FLUX_CAPACITOR"])
    assert "IB_FLUX_CAPACITOR (in the environment) is not a variable" in warning
    assert "did you mean" not in warning and ".env.example" in warning


def test_variables_of_other_programs_are_not_warned_about():
    others = ["PATH", "HOME", "LANG", "LOG_LEVEL", "DATABASE_URL", "STATE_DIRECTORY", "TZ"]
    others += ["PYTHONPATH", "INVOCATION_ID", "JOURNAL_STREAM", "ORDERING", "LIVENESS"]
    others += ["IBM_CLOUD_API_KEY", "IBUS_ADDRESS", "EXECUTOR", "TRADE_DATE"]
    assert unknown_variable_warnings(others) == []


def test_every_known_variable_loads_without_a_warning(tmp_path):
    environ = dict.fromkeys(KNOWN_VARIABLES, "")
    assert settings_warnings(load_settings(environ, dotenv_path=None)) == []


def test_a_name_set_in_both_places_is_warned_once_as_in_the_environment():
    warnings = unknown_variable_warnings(["ORDER_ENABLED"], ["ORDER_ENABLED"])
    assert len(warnings) == 1 and "(in the environment)" in warnings[0]


# ---------------------------------------------------------------- risk overrides not applied


@pytest.mark.parametrize("switch", [None, "", "false", "off", "0"])
def test_an_override_set_while_the_master_switch_is_off_is_a_warning(switch):
    env = {"EXEC_RISK_MAX_ORDER_NOTIONAL": " 5000 "}
    if switch is not None:
        env[RISK_SWITCH] = switch
    (warning,) = settings_warnings(load_settings(env, dotenv_path=None))
    assert warning.startswith("EXEC_RISK_MAX_ORDER_NOTIONAL=5000 is set but NOT applied: ")
    assert "set EXEC_RISK_ENABLED=true to apply it" in warning
    expected = f"EXEC_RISK_ENABLED={switch}" if switch else "EXEC_RISK_ENABLED is unset"
    assert expected in warning


def test_each_unapplied_override_is_named():
    env = {name: "2" for name in RISK_OVERRIDES}
    assert [v for v, _ in unapplied_risk_overrides(env)] == list(RISK_OVERRIDES)


@pytest.mark.parametrize(
    "env",
    [
        {RISK_SWITCH: "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "5000"},  # applied
        {"EXEC_RISK_MAX_ORDER_NOTIONAL": "0"},  # 0 = no override
        {"EXEC_RISK_MAX_ORDER_NOTIONAL": ""},
        {RISK_SWITCH: "false"},  # nothing to apply
        # Bad values are errors where the limits are computed, not warnings.
        {"EXEC_RISK_MAX_ORDER_NOTIONAL": "lots"},
        {RISK_SWITCH: "maybe", "EXEC_RISK_MAX_ORDER_NOTIONAL": "5000"},
    ],
)
def test_no_override_warning_when_nothing_set_is_left_unapplied(env):
    assert settings_warnings(load_settings(env, dotenv_path=None)) == []


def test_the_override_variables_are_the_ones_risk_reads():
    from reconciler.decide.risk import ENV_MASTER_SWITCH, ENV_OVERRIDES

    assert ENV_MASTER_SWITCH == RISK_SWITCH
    assert sorted(ENV_OVERRIDES.values()) == sorted(RISK_OVERRIDES)


# ---------------------------------------------------------------- documentation agrees


def _example_variables() -> dict[str, str]:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    pairs = (line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z_]+=", line))
    return {k: v for k, v in pairs}


def test_env_example_documents_every_variable_and_nothing_else():
    assert set(_example_variables()) == set(ENV_VARS) - set(ENVIRONMENT_ONLY)


def test_an_environment_only_variable_in_dotenv_is_warned_to_have_no_effect(tmp_path):
    path = dotenv(tmp_path, "RECONCILER_LOG_LEVEL=DEBUG\n")
    (warning,) = settings_warnings(load_settings({}, dotenv_path=path))
    assert warning == (
        f"RECONCILER_LOG_LEVEL (in {path}) has no effect there: it is read from the "
        "environment only"
    )


def test_env_example_is_the_defaults_and_loads_without_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no legacy ./.reconciler decides the state directory
    settings = load_settings({}, dotenv_path=str(REPO / ".env.example"))
    assert settings_warnings(settings) == []
    state_dir, _ = default_state_dir({}, legacy_exists=False)
    assert settings == Settings(risk_env=settings.risk_env, state_dir=state_dir)
    assert _example_variables()[RISK_SWITCH] == "false"


def test_readme_documents_the_master_switch_off_by_default_like_env_example():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{RISK_SWITCH}`"))
    assert "`false`" in row
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    named = {n for line in table for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    configuration = {n for n in named if n.startswith(PREFIXES)}
    assert len(configuration) > 15 and configuration <= KNOWN_VARIABLES


def test_state_goes_to_systemd_state_directory_first_then_legacy_then_xdg():
    home = {"HOME": "/home/desk"}
    assert default_state_dir({**home, "STATE_DIRECTORY": "/var/lib/r:/var/lib/x"}, True) == (
        "/var/lib/r",
        None,
    )
    assert default_state_dir(home, False) == ("/home/desk/.local/state/ib-reconciler", None)
    assert default_state_dir({**home, "XDG_STATE_HOME": "/st"}, False)[0] == "/st/ib-reconciler"
    where, warning = default_state_dir(home, True)
    assert where == ".reconciler"
    assert "mv .reconciler /home/desk/.local/state/ib-reconciler" in warning


def test_a_legacy_state_folder_in_the_working_directory_is_used_with_a_warning(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".reconciler").mkdir()
    settings = load_settings({"HOME": str(tmp_path)}, dotenv_path=None)
    assert settings.state_dir == ".reconciler"
    assert any("older versions" in w for w in settings_warnings(settings))


def test_max_msg_rate_defaults_to_45_and_takes_a_lower_budget():
    assert load_settings({}, dotenv_path=None).max_msg_rate == 45.0
    assert load_settings({"RECONCILER_MAX_MSG_RATE": "40"}, dotenv_path=None).max_msg_rate == 40.0


def test_max_msg_rate_above_ibs_limit_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="RECONCILER_MAX_MSG_RATE='60' must be at most 50"):
        load_settings({"RECONCILER_MAX_MSG_RATE": "60"}, dotenv_path=None)
