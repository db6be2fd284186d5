"""`reconcile apply` start-up: what it loads before its first message reaches the gateway.

The first message waits for nothing it does not need (issue 12: start-up < 0.5 s): the
settings library, the store, the desired-state loader and the cycle's modules are loaded
while the handshake travels, and Alembic not at all when the schema is current. Checked
in a fresh process, by the modules loaded when its socket first writes, not by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from e2e import placed_order_refs

# Loaded after the handshake left (or never, for Alembic on a current schema).
NOT_BEFORE_THE_FIRST_MESSAGE = (
    "pydantic",
    "pydantic_settings",
    "alembic",
    "sqlalchemy",
    "rich",
    "jsonschema",
    "yaml",
    "structlog",
    "reconciler.store",
    "reconciler.desired.loader",
    "reconciler.cycle",
    "reconciler.app.scheduler",
    "reconciler.apply.executor",
    "reconciler.observe.facts",
    "numpy._core",  # numpy itself: its stand-in until something reads from it
)

PROBE = textwrap.dedent(
    """
    import atexit, json, socket, sys

    report, args = sys.argv[1], sys.argv[2:]
    seen = {}
    send = socket.socket.send

    def first_send(self, data, *rest):
        if "at_first_message" not in seen:
            seen["at_first_message"] = sorted(sys.modules)
        return send(self, data, *rest)

    socket.socket.send = first_send

    def write():
        seen["at_exit"] = sorted(sys.modules)
        with open(report, "w", encoding="utf-8") as handle:
            json.dump(seen, handle)

    atexit.register(write)
    sys.argv = ["reconcile", *args]
    from reconciler.app.cli import main
    main()
    """
)


def apply_probed(cli, desired_dir, report, **env):
    """`reconcile apply --auto-approve` in a fresh process; its modules when its socket
    first wrote and when it exited."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), "apply", "--dir", str(desired_dir),
         "--auto-approve", "--gateway", cli.gateway],
        cwd=cli.workdir, env={**cli.env, **env}, capture_output=True, text=True, timeout=90,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done, json.loads(report.read_text(encoding="utf-8"))


def loaded(modules: list[str], names) -> list[str]:
    return [name for name in names if name in modules]


def test_apply_sends_its_first_message_before_loading_settings_store_or_desired_state(
    cli, sim, desired_dir, tmp_path
):
    done, modules = apply_probed(cli, desired_dir, tmp_path / "first.json", ORDERS_ENABLED="true")
    assert done.returncode == 0, done.stderr
    assert len(placed_order_refs(sim)) == 7
    assert loaded(modules["at_first_message"], NOT_BEFORE_THE_FIRST_MESSAGE) == []
    # ...and all of it was loaded afterwards, by the same process.
    assert {"pydantic_settings", "sqlalchemy", "reconciler.cycle"} <= set(modules["at_exit"])


def test_apply_on_a_current_schema_never_imports_alembic(cli, sim, desired_dir, tmp_path):
    first, _ = apply_probed(cli, desired_dir, tmp_path / "first.json")  # creates the schema
    assert first.returncode == 0, first.stderr
    again, modules = apply_probed(cli, desired_dir, tmp_path / "again.json")
    assert again.returncode == 0, again.stderr
    assert "DRY RUN" in again.stderr
    assert "alembic" not in modules["at_exit"]
    assert "sqlalchemy" in modules["at_exit"]


def test_apply_with_a_bad_setting_read_after_connecting_fails_as_before(
    cli, sim, desired_dir, tmp_path
):
    done, modules = apply_probed(
        cli, desired_dir, tmp_path / "bad.json", ORDERS_ENABLED="true", TRADING_MODE="demo"
    )
    assert done.returncode == 1
    assert "TRADING_MODE='demo' must be paper or live" in done.stderr
    assert "at_first_message" in modules  # it was read while the handshake travelled
    assert placed_order_refs(sim) == []


def test_apply_with_a_bad_connection_setting_fails_before_connecting(
    cli, sim, desired_dir, tmp_path
):
    done, modules = apply_probed(
        cli, desired_dir, tmp_path / "bad.json", ORDERS_ENABLED="true", IB_CLIENT_ID="seventeen"
    )
    assert done.returncode == 1
    assert "IB_CLIENT_ID='seventeen' is not a whole number" in done.stderr
    assert "at_first_message" not in modules
