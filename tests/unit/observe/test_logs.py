"""Log configuration (pure choice of format and level, and the handler it installs): JSON or
human lines on the log stream, the cycle's context on every line, the client libraries'
records rendered the same way, and their decode failures never filtered out."""

import io
import json
import logging

import pytest

from reconciler.app.cli import _HandledGatewayErrors
from reconciler.observe.logs import (
    LogConfigError,
    choose_format,
    choose_level,
    configure,
    default_level,
)
from reconciler.util.logs import bind_cycle, get_logger


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SYSTEMD = {"INVOCATION_ID": "0123abcd"}


@pytest.mark.parametrize(
    ("flag", "env", "stream", "expected"),
    [
        (None, {}, io.StringIO(), "human"),  # a pipe outside systemd
        (None, SYSTEMD, io.StringIO(), "json"),  # systemd, journal
        (None, {"JOURNAL_STREAM": "8:1234"}, io.StringIO(), "json"),
        (None, SYSTEMD, Terminal(), "human"),  # systemd-run --pty: a person is watching
        (None, {"RECONCILER_LOG_FORMAT": "JSON"}, Terminal(), "json"),
        (None, {**SYSTEMD, "RECONCILER_LOG_FORMAT": "human"}, io.StringIO(), "human"),
        ("json", {"RECONCILER_LOG_FORMAT": "human"}, Terminal(), "json"),  # the flag wins
        ("human", SYSTEMD, io.StringIO(), "human"),
    ],
)
def test_format_is_the_flag_then_the_variable_then_json_under_systemd_off_a_terminal(
    flag, env, stream, expected
):
    assert choose_format(flag, env, stream) == expected


def test_an_unknown_format_or_level_names_the_variable():
    with pytest.raises(LogConfigError, match="RECONCILER_LOG_FORMAT='yaml'"):
        choose_format(None, {"RECONCILER_LOG_FORMAT": "yaml"}, io.StringIO())
    with pytest.raises(LogConfigError, match="RECONCILER_LOG_LEVEL='loud'"):
        choose_level({"RECONCILER_LOG_LEVEL": "loud"})


def test_level_defaults_to_info_and_reads_the_variable():
    assert choose_level({}) == logging.INFO
    assert choose_level({"RECONCILER_LOG_LEVEL": " debug "}) == logging.DEBUG
    assert choose_level({"RECONCILER_LOG_LEVEL": "warn"}) == logging.WARNING


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {n: logging.getLogger(n).level for n in ("ib_async", "ib_insync", "alembic")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)


def test_json_lines_carry_the_cycle_context_and_render_client_library_records_too(
    restore_logging,
):
    out = io.StringIO()
    configure("json", logging.INFO, stream=out)
    log = get_logger("reconciler.test")
    with bind_cycle(cycle_id=12, account="DU0000001"):
        log.info("order intent", order_ref="rc-p-001", side="BUY", limit_price=None)
        logging.getLogger("ib_async.wrapper").error("Error 201, reqId 7: Order rejected")
        log.debug("detail below the level")
    log.warning("after the cycle")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == [
        "order intent",
        "Error 201, reqId 7: Order rejected",
        "after the cycle",
    ]
    intent, client, after = lines
    assert list(intent)[:7] == [
        "timestamp",
        "level",
        "event",
        "logger",
        "cycle_id",
        "account",
        "order_ref",
    ]
    assert intent["cycle_id"] == 12 and intent["level"] == "info" and intent["side"] == "BUY"
    assert "limit_price" not in intent  # empty fields are left out
    assert intent["timestamp"].endswith("Z")
    assert client["cycle_id"] == 12 and client["logger"] == "ib_async.wrapper"
    assert client["level"] == "error"
    assert "cycle_id" not in after


def test_human_lines_have_time_level_event_and_fields(restore_logging):
    out = io.StringIO()
    configure("human", logging.INFO, stream=out)
    with bind_cycle(cycle_id=3, account="DU0000001"):
        get_logger("reconciler.test").warning("gate refused", gate="TRADING_STATE")
    [line] = out.getvalue().splitlines()
    assert "[warning" in line and "gate refused" in line
    assert "gate=TRADING_STATE" in line and "cycle_id=3" in line and "\x1b[" not in line


def test_client_libraries_speak_at_info_only_when_debug_is_asked_for(restore_logging):
    out = io.StringIO()
    configure("json", logging.INFO, stream=out)
    logging.getLogger("ib_async.client").info("Connecting to 127.0.0.1:4002")
    logging.getLogger("ib_async.client").warning("Peer closed connection")
    configure("json", logging.DEBUG, stream=out)
    logging.getLogger("ib_async.client").info("Connected")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["Peer closed connection", "Connected"]


def test_decode_failures_still_come_through_the_filter_in_both_formats(restore_logging):
    for fmt in ("json", "human"):
        out = io.StringIO()
        configure(fmt, logging.INFO, stream=out, filters=(_HandledGatewayErrors(),))
        wrapper = logging.getLogger("ib_async.wrapper")
        wrapper.error("Error 202, reqId 9: Order cancelled")  # echoed: we report it ourselves
        logging.getLogger("ib_async.decoder").error("Error handling fields: ['3', '7']")
        assert "Error handling fields" in out.getvalue()
        assert "reqId 9" not in out.getvalue()


def test_without_configuration_the_core_writes_nothing_to_stdout(capsys):
    get_logger("reconciler.test").info("quiet when nobody configured logging")
    assert capsys.readouterr().out == ""


def test_the_default_level_is_info_for_the_daemon_and_json_and_warning_for_narrated_commands():
    assert default_level("json", "apply") == "INFO"
    assert default_level("human", "run") == "INFO"
    assert default_level("human", "apply") == "WARNING"  # its progress lines tell the story
    assert choose_level({}, default_level("human", "plan")) == logging.WARNING
    assert choose_level({"RECONCILER_LOG_LEVEL": "INFO"}, "WARNING") == logging.INFO
