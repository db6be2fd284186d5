"""Structured logs end to end: `reconcile run --once` applies against the simulator with JSON
logs, and the log alone tells the cycle and each order's life."""

from __future__ import annotations

import json

from e2e import placed_order_refs

ENABLED = {"ORDERS_ENABLED": "true"}
ORDER_LIFE = ("order intent", "order acknowledged", "order fill", "order filled")


def _self_heal(desired_dir) -> None:
    schedule = desired_dir / "schedule.yaml"
    schedule.write_text(schedule.read_text().replace("selfHeal: false", "selfHeal: true"))


def test_run_once_with_json_logs_writes_one_json_object_per_line_telling_each_orders_life(
    cli, sim, desired_dir
):
    _self_heal(desired_dir)
    result = cli(
        "--log-format",
        "json",
        "run",
        "--once",
        "--ignore-window",
        "--dir",
        str(desired_dir),
        "--gateway",
        cli.gateway,
        gateway=False,
        env=ENABLED,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # with JSON logs the outcome is in the log, not a plain line
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line parses
    assert all(isinstance(x, dict) and {"timestamp", "level", "event"} <= set(x) for x in lines)
    events = [x["event"] for x in lines]
    assert events[0] == "started" and events[-1] == "stopped"

    begin, end = events.index("cycle started"), events.index("cycle finished")
    cycle = lines[begin : end + 1]
    cycle_id = lines[begin]["cycle_id"]
    assert all(x.get("cycle_id") == cycle_id and x.get("account") for x in cycle), cycle
    assert lines[end]["status"] == "ok" and lines[end]["level"] == "info"

    refs = placed_order_refs(sim)
    assert len(refs) == 7
    for ref in refs:
        life = [x["event"] for x in cycle if x.get("order_ref") == ref]
        assert [e for e in life if e in ORDER_LIFE] == list(ORDER_LIFE), (ref, life)
        [intent] = [x for x in cycle if x.get("order_ref") == ref and x["event"] == "order intent"]
        assert intent["account"].startswith("DU") and intent["reason"]
    # Each order event once: seven intents, seven final outcomes.
    assert events.count("order intent") == 7 and events.count("order filled") == 7
    [done] = [x for x in lines if x["event"] == "scheduled cycle done"]
    assert done["exit_code"] == 0 and f"apply cycle {cycle_id} ok" in done["outcome"]


def test_a_refused_gate_is_one_warning_line_naming_the_gate(cli, sim, desired_dir):
    assert cli("halt", "--reason", "desk says stop").returncode == 0
    result = cli(
        "apply",
        "--dir",
        str(desired_dir),
        "--auto-approve",
        env={**ENABLED, "RECONCILER_LOG_FORMAT": "json"},
    )
    assert result.returncode == 3
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    refused = [x for x in lines if x["event"] == "gate refused"]
    assert [(x["gate"], x["level"]) for x in refused] == [("TRADING_STATE", "warning")]
    assert "desk says stop" in refused[0]["detail"] and refused[0]["cycle_id"]
    assert sim.journal.messages("in", 3) == []
