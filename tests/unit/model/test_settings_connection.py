"""The connection's settings read without pydantic (`connection_fields`, what `apply` connects
with before it reads the rest) agree with `load_settings`: the same values whenever they are
read, and nothing read whenever `load_settings` refuses a value (hypothesis, 300 examples)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model.settings import (
    CONNECTION_FIELDS,
    Settings,
    SettingsError,
    connection_fields,
    connection_mismatch,
    load_settings,
    read_dotenv,
)

RAW_VALUES = {
    "IB_GATEWAY_HOST": ["", "  ", "gw.example", " 10.0.0.2 "],
    "IB_GATEWAY_PORT": ["", " ", "4001", " 7497 ", "0", "65535", "65536", "-1", "port", "4.5"],
    "IB_CLIENT_ID": ["", "0", "9", " 12 ", "-3", "seventeen"],
    "IB_CONNECT_TIMEOUT": ["", "0", "2.5", "30", "-1", "nan", "inf", "soon"],
    "RECONCILER_MAX_MSG_RATE": ["", "0", "10", "45", "50", "50.5", "-5", "fast"],
    "ORDERS_ENABLED": ["", "true", "false", "yes", "off", "1", "maybe"],
}


def sources():
    variable_values = st.dictionaries(
        st.sampled_from(sorted(RAW_VALUES)), st.none(), max_size=len(RAW_VALUES)
    ).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {name: st.sampled_from(RAW_VALUES[name]) for name in chosen}
        )
    )
    return st.tuples(variable_values, variable_values)


@settings(max_examples=300, deadline=None)
@given(sources())
def test_connection_fields_are_what_load_settings_reads_or_nothing(both):
    environ, in_dotenv = both
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env"
        path.write_text(
            "".join(f'{name}="{value}"\n' for name, value in in_dotenv.items()), encoding="utf-8"
        )
        early = connection_fields(environ, read_dotenv(path))
        try:
            full = load_settings(environ, dotenv_path=str(path))
        except SettingsError:
            assert early is None
            return
    if early is not None:
        assert early == {name: getattr(full, name) for name in CONNECTION_FIELDS}


def test_a_connection_setting_changed_between_the_reads_is_named():
    connected = Settings(gateway_port=4002, client_id=17)
    assert connection_mismatch(connected, Settings(gateway_port=4002, client_id=17)) is None
    problem = connection_mismatch(connected, Settings(gateway_port=4001, client_id=17))
    assert problem is not None and "gateway_port 4002 -> 4001" in problem
