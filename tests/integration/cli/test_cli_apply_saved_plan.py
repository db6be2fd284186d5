"""`reconcile apply PLANFILE` end to end: an edited plan is refused (its digest no longer
matches) and a valid one is risk-checked again against the limits in force at apply time.

Both sides are checked: the simulator (its journal of incoming placeOrder messages and its
order book) and the reconciler's ledger (no INTENT row when nothing may be sent).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from reconciler.model.plan import document_orders, seal

pytestmark = pytest.mark.integration

ENABLED = {"ORDERS_ENABLED": "true"}


def _plan(cli, desired_dir, tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "plan.json"
    made = cli("plan", str(desired_dir), "--out", str(out))
    assert made.returncode == 0, made.stderr
    return out, json.loads(out.read_text())


def _write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def _intents(workdir: Path) -> list[str]:
    db_path = workdir / ".reconciler" / "reconciler.db"
    assert db_path.exists()  # `plan` opened the store: an empty ledger is a real answer
    db = sqlite3.connect(db_path)
    try:
        return [r for (r,) in db.execute("select order_ref from order_events where kind='INTENT'")]
    finally:
        db.close()


def _sim_orders(sim) -> dict[str, float]:
    """orderRef -> quantity of every order the simulated broker holds (any state)."""
    return sim.call(lambda: {o.order_ref: o.total_quantity for o in sim.broker.orders.values()})


def _assert_nothing_sent(sim, workdir: Path) -> None:
    assert sim.journal.messages("in", 3) == []
    assert _sim_orders(sim) == {}
    assert _intents(workdir) == []


def _order(d: dict, account: int, row: int) -> dict:
    """One order of the file (a row of its account's orders table) by field name."""
    table = d["accounts"][account]["orders"]
    return dict(zip(table["columns"], table["rows"][row], strict=True))


def _set(d: dict, account: int, row: int, **values) -> None:
    table = d["accounts"][account]["orders"]
    for field, value in values.items():
        table["rows"][row][table["columns"].index(field)] = value


def _edit_quantity(d: dict) -> None:
    _set(d, 0, 0, quantity=2000.0)


def _edit_limit_price_and_type(d: dict) -> None:
    _set(d, 0, 0, order_type="LMT", limit_price=300.0)


def _edit_account(d: dict) -> None:
    d["accounts"][0]["account"] = "DU0000001"


def _add_order(d: dict) -> None:
    rows = d["accounts"][1]["orders"]["rows"]
    rows.append(list(rows[0]))
    _set(d, 1, len(rows) - 1, leg=8, quantity=10.0)


def _drop_drift_row(d: dict) -> None:
    d["accounts"][1]["drift"]["rows"].pop(0)


def _edit_desired_hash(d: dict) -> None:
    d["desired_hash"] = "0" * 64


EDITS = {
    "quantity": (_edit_quantity, "accounts[0].orders[0].quantity (leg 1, DU0000002 BUY GLD)"),
    "limit price and order type": (
        _edit_limit_price_and_type,
        "accounts[0].orders[0].order_type, accounts[0].orders[0].limit_price",
    ),
    "account": (_edit_account, "edited: accounts[0].account (DU0000001)"),
    "added order": (_add_order, "accounts[1].orders[3] (leg 8, DU0000001 BUY BND): added"),
    "dropped drift row": (
        _drop_drift_row,
        "accounts[1].drift (DU0000001): 1 drift row(s) removed (were drift[0])",
    ),
    "desired hash": (_edit_desired_hash, "edited: desired_hash"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_apply_of_an_edited_plan_is_refused_naming_the_edit_and_sends_nothing(
    edit, cli, sim, desired_dir, tmp_path
):
    _, document = _plan(cli, desired_dir, tmp_path)
    change, named = EDITS[edit]
    change(document)
    edited = _write(tmp_path / "edited.json", document)
    result = cli("apply", str(edited), "--dir", str(desired_dir), "--auto-approve", env=ENABLED)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "does not match its SHA-256 digest" in result.stderr
    assert named in result.stderr
    _assert_nothing_sent(sim, tmp_path)


def test_apply_of_a_plan_given_a_second_order_list_under_a_valid_digest_is_refused(
    cli, sim, desired_dir, tmp_path
):
    _, document = _plan(cli, desired_dir, tmp_path)
    document["orders"] = [{**_order(document, 0, 0), "quantity": 1.0}]  # then resealed
    del document["integrity"]
    document["integrity"] = seal(document)
    resealed = _write(tmp_path / "resealed.json", document)
    result = cli("apply", str(resealed), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "a version 4 plan has no top-level orders" in result.stderr
    _assert_nothing_sent(sim, tmp_path)


def test_apply_of_a_plan_without_a_digest_is_refused(cli, sim, desired_dir, tmp_path):
    _, document = _plan(cli, desired_dir, tmp_path)
    del document["integrity"]
    unsealed = _write(tmp_path / "unsealed.json", document)
    result = cli("apply", str(unsealed), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "carries no integrity digest" in result.stderr
    _assert_nothing_sent(sim, tmp_path)


UNREADABLE = {
    "truncated": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "not a plan": (lambda text: '{"hello": 1}', "not an ib-reconciler plan file"),
    "a JSON list": (lambda text: "[1, 2]", "not an ib-reconciler plan file"),
    "format version 1": (
        lambda text: text.replace('"version": 4', '"version": 1'),
        "plan format version 1 is not supported",
    ),
    "format version 3": (
        lambda text: text.replace('"version": 4', '"version": 3'),
        "plan format version 3 is not supported (this reconciler reads version 4); make a new "
        "plan with `reconcile plan --out FILE`",
    ),
    "empty": (lambda text: "", "not valid JSON"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_apply_of_an_unreadable_plan_file_exits_1_with_one_clear_line(
    case, cli, sim, desired_dir, tmp_path
):
    out, _ = _plan(cli, desired_dir, tmp_path)
    spoil, message = UNREADABLE[case]
    bad = tmp_path / "bad.json"
    bad.write_text(spoil(out.read_text()))
    result = cli("apply", str(bad), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"error: {bad} is not a valid plan file" in result.stderr and message in result.stderr
    _assert_nothing_sent(sim, tmp_path)


def test_apply_clips_a_saved_plan_to_a_limit_tightened_at_apply_time(
    cli, sim, desired_dir, tmp_path
):
    out, document = _plan(cli, desired_dir, tmp_path)
    planned = {f"rc-{document['plan_id']}-{o['leg']:03d}": o for o in document_orders(document)}
    tightened = {**ENABLED, "EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "20000"}
    result = cli("apply", str(out), "--dir", str(desired_dir), "--format", "json", env=tightened)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sent = _sim_orders(sim)
    assert set(sent) == set(planned)  # every order still goes, none grows
    for ref, order in planned.items():
        # valued as risk values it: never below the limit price
        notional = order["quantity"] * order["limit_price"]
        if notional > 20000:
            assert sent[ref] == int(20000 / order["limit_price"]) < order["quantity"]
        else:
            assert sent[ref] == order["quantity"]
    clipped = {ref for ref in planned if sent[ref] < planned[ref]["quantity"]}
    assert len(clipped) == 2  # BND 549 and VTI 130 of DU0000001
    clips = [d for d in report["denials"] if "stage=apply" in d["detail"]]
    assert [(d["code"], d["action"]) for d in clips] == [
        ("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "clip")
    ] * 2
    assert report["totals"]["clips"] == 2
    assert sorted(_intents(tmp_path)) == sorted(planned)


def test_apply_denies_every_order_of_a_saved_plan_that_no_longer_fits_and_sends_nothing(
    cli, sim, desired_dir, tmp_path
):
    out, document = _plan(cli, desired_dir, tmp_path)
    tight = {**ENABLED, "EXEC_RISK_ENABLED": "true", "EXEC_RISK_MAX_ORDER_NOTIONAL": "200"}
    result = cli("apply", str(out), "--dir", str(desired_dir), env=tight)
    assert result.returncode == 4, result.stderr  # drift this run could not close
    assert "Plan: 7 order(s)" not in result.stdout  # the plan-time summary is not shown
    assert "No orders planned" in result.stdout
    assert result.stdout.count("NOTIONAL_EXCEEDS_MAX_PER_ORDER") == 7
    _assert_nothing_sent(sim, tmp_path)
    db = sqlite3.connect(tmp_path / ".reconciler" / "reconciler.db")
    try:
        rows = db.execute("select code, action, detail from risk_denials").fetchall()
    finally:
        db.close()
    assert len(document_orders(document)) == 7
    assert [(code, action) for code, action, _ in rows] == [
        ("NOTIONAL_EXCEEDS_MAX_PER_ORDER", "deny")
    ] * 7
    assert all(json.loads(detail)["stage"] == "apply" for _, _, detail in rows)


def test_a_forged_plan_with_a_recomputed_digest_is_still_held_to_the_risk_limits(
    cli, sim, desired_dir, tmp_path
):
    _, document = _plan(cli, desired_dir, tmp_path)
    gld = _order(document, 0, 0)
    assert gld["symbol"] == "GLD" and gld["quantity"] == 20
    _set(document, 0, 0, quantity=2000.0)
    del document["integrity"]
    document["integrity"] = seal(document)
    forged = _write(tmp_path / "forged.json", document)
    result = cli("apply", str(forged), "--dir", str(desired_dir), "--format", "json", env=ENABLED)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ref = f"rc-{document['plan_id']}-001"
    sent = _sim_orders(sim)[ref]
    assert sent * gld["limit_price"] <= 60_000  # maxOrderNotional of the default policy
    assert sent == int(60_000 / gld["limit_price"])
    [clip] = [d for d in report["denials"] if d["key"] == "GLD" and "stage=apply" in d["detail"]]
    assert clip["code"] == "NOTIONAL_EXCEEDS_MAX_PER_ORDER" and clip["action"] == "clip"


def test_apply_of_a_saved_plan_under_a_halt_is_refused(cli, sim, desired_dir, tmp_path):
    out, _ = _plan(cli, desired_dir, tmp_path)
    assert cli("halt", "--reason", "desk says stop").returncode == 0
    result = cli("apply", str(out), "--dir", str(desired_dir), env=ENABLED)
    assert result.returncode == 3 and "desk says stop" in result.stderr
    _assert_nothing_sent(sim, tmp_path)
