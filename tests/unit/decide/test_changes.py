"""Desired-state changes named as the YAML files name them (deepdiff underneath)."""

from __future__ import annotations

import dataclasses

from builders import desired_of, policy, portfolio, target

from reconciler.decide.changes import (
    account_documents,
    document_changes,
    format_value,
    yaml_name,
)
from reconciler.desired.snapshot import documents_of, snapshot_of
from reconciler.model.desired import SourceRef


def docs(*targets, pol=None, **changes):
    state = desired_of(portfolio(*targets, **changes), policies=[pol or policy()])
    return documents_of(state)


def test_a_weight_change_reads_as_the_yaml_says_it():
    before = docs(target("VTI", weight=0.55), target("BND", weight=0.3))
    after = docs(target("BND", weight=0.3), target("VTI", weight=0.5))
    assert document_changes(before, after) == ["Portfolio core: targets VTI weight 55% → 50%"]


def test_a_policy_limit_change_uses_the_camel_case_name_and_thousands_separators():
    before = docs(pol=policy(max_order_notional=60_000.0))
    after = docs(pol=policy(max_order_notional=10_000.0))
    assert document_changes(before, after) == [
        "RiskPolicy default: maxOrderNotional 60,000 → 10,000"
    ]


def test_added_and_removed_targets_show_their_amounts():
    before = docs(target("VTI", weight=0.5), target("SGOV", quantity=100))
    after = docs(target("VTI", weight=0.5), target("GLD", weight=0.1))
    assert document_changes(before, after) == [
        "Portfolio core: targets GLD added (weight 10%)",
        "Portfolio core: targets SGOV removed (quantity 100)",
    ]


def test_restricted_additions_and_unset_limits_read_plainly():
    before = docs(pol=policy(restricted=("GME",)))
    after = docs(pol=policy(restricted=("GME", "AMC"), max_spread=0.01))
    assert document_changes(before, after) == [
        "RiskPolicy default: maxSpread (unset) → 1%",
        "RiskPolicy default: restricted AMC added",
    ]


def test_durations_and_nested_fields_use_their_yaml_names():
    before = docs(target("VTI", weight=0.5))
    after = docs(target("VTI", weight=0.5), execution={"ttl_seconds": 300.0, "order_type": "MKT"})
    assert document_changes(before, after) == [
        "Portfolio core: execution orderType LMT → MKT",
        "Portfolio core: execution ttl 2m → 5m",
    ]


def test_a_new_document_is_one_line():
    before = docs(target("VTI", weight=0.5))
    after = {**before, "Schedule": {"nightly": {"self_heal": True}}}
    assert document_changes(before, after) == ["Schedule nightly: added"]


def test_where_a_document_came_from_is_not_a_change():
    p = portfolio(target("VTI", weight=0.5))
    moved = dataclasses.replace(p, source=SourceRef("other.yaml", 40))
    assert document_changes(
        account_documents(snapshot_of(p, policy())), account_documents(snapshot_of(moved, policy()))
    ) == []


def test_a_recorded_account_snapshot_from_json_compares_equal_to_the_model():
    import json

    snap = snapshot_of(portfolio(target("VTI", weight=0.5)), policy(restricted=("GME",)))
    from_json = json.loads(json.dumps(snap))
    assert document_changes(account_documents(from_json), account_documents(snap)) == []


def test_field_names_and_values_are_the_yaml_spellings():
    assert yaml_name("max_order_notional") == "maxOrderNotional"
    assert yaml_name("max_price_age_seconds") == "maxPriceAge"
    assert yaml_name("self_heal") == "selfHeal"
    assert format_value("maxPriceAge", 30.0) == "30s"
    assert format_value("interval", 900.0) == "15m"
    assert format_value("cashReserve", 0.05) == "5%"
    assert format_value("selfHeal", False) == "false"
