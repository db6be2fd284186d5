"""The plan file's integrity: the SHA-256 seal, naming what was edited, the one authoritative
list of orders, and clear errors for files that are not plans."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import orjson
import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target

from reconciler.decide.planner import build_plan
from reconciler.model.plan import (
    INTEGRITY_KEY,
    PlanFileError,
    PlanIntegrityError,
    PlannedOrder,
    canonical_json,
    content_digest,
    dumps,
    from_dict,
    loads,
    seal,
    to_document,
)

ORDER_FIELDS = [f.name for f in dataclasses.fields(PlannedOrder)]


def two_account_plan():
    one = Book("DU0000001", cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    two = Book("DU0000002", cash=40_000.0).hold("GLD", 10, price=240.0).instrument("TLT", 92.0)
    desired = desired_of(
        portfolio(target("VTI", weight=0.5), target("BND", weight=0.3), name="core"),
        portfolio(
            target("GLD", weight=0.1), target("TLT", weight=0.5), name="bal", account="DU0000002"
        ),
    )
    return build_plan(
        desired,
        actual_of(one, two),
        {**one.resolved(), **two.resolved()},
        {"default": limits(max_order_notional=15_000)},  # clips: decisions in the file too
        now=NOW,
        plan_id="20261120T1530Z-abcdef",
    )


@pytest.fixture(scope="module")
def document() -> dict:
    doc = json.loads(dumps(two_account_plan()))
    assert len(doc["accounts"]) == 2 and all(a["orders"] for a in doc["accounts"])
    assert doc["decisions"], "the example should carry risk decisions"
    return doc


def edited(document: dict, change) -> dict:
    copy_ = copy.deepcopy(document)
    change(copy_)
    return copy_


def resealed(document: dict) -> dict:
    """As someone who edits the file and recomputes its digest would leave it."""
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    return {**body, INTEGRITY_KEY: seal(body)}


def refusal(document: dict) -> str:
    with pytest.raises(PlanIntegrityError) as caught:
        from_dict(document)
    return "\n".join(caught.value.problems)


def other_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return 1.0
    return value + "x"


# ---------------------------------------------------------------- the seal


def test_digest_is_sha256_of_the_canonical_json_of_the_document_without_its_seal(document):
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    # Format 3: orjson's canonical form (sorted keys, no whitespace, UTF-8).
    expected = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert json.loads(canonical_json(body)) == body
    assert canonical_json(body) == json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert document[INTEGRITY_KEY]["digest"] == expected == content_digest(document)
    assert document[INTEGRITY_KEY]["algorithm"] == "sha256"


def test_digest_is_stable_across_writes_key_order_and_indentation(document):
    plan = two_account_plan()
    assert to_document(plan)[INTEGRITY_KEY] == to_document(plan)[INTEGRITY_KEY]
    reordered = json.loads(
        json.dumps(document, sort_keys=True), object_pairs_hook=lambda p: dict(reversed(p))
    )
    assert list(reordered) != list(document)
    for text in (json.dumps(reordered), json.dumps(document, indent=7), json.dumps(document)):
        assert loads(text).orders == plan.orders


def test_a_loaded_plan_is_the_plan_that_was_written():
    plan = two_account_plan()
    assert loads(dumps(plan)) == plan


@pytest.mark.parametrize("field", ORDER_FIELDS)
def test_any_edited_order_field_is_refused_naming_the_order_and_the_field(document, field):
    def change(d):
        order = d["accounts"][1]["orders"][0]
        order[field] = other_value(order[field])

    problems = refusal(edited(document, change))
    order = document["accounts"][1]["orders"][0]
    assert "does not match its SHA-256 digest" in problems
    assert f"accounts[1].orders[0].{field} (leg " in problems
    if field not in ("account", "side", "symbol", "leg"):  # the label shows the file's values
        label = f"(leg {order['leg']}, {order['account']} {order['side']} {order['symbol']})"
        assert f"accounts[1].orders[0].{field} {label}" in problems


@pytest.mark.parametrize(
    "key",
    ["plan_id", "created_at", "desired_hash", "actual_fingerprint", "snapshot_time", "git_commit"],
)
def test_any_edited_top_level_value_is_refused_naming_it(document, key):
    problems = refusal(edited(document, lambda d: d.__setitem__(key, other_value(d[key] or ""))))
    assert f"edited: {key}" in problems.splitlines()[1]


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: d["nav"].__setitem__("DU0000001", 1.0), "edited: nav"),
        (lambda d: d["quotes"].popitem(), "edited: quotes"),
        (lambda d: d["desired_snapshot"]["DU0000001"].clear(), "edited: desired_snapshot"),
        (lambda d: d["accounts"][0].__setitem__("capital", 1.0), "accounts[0].capital"),
        (lambda d: d["accounts"][0]["drift"].pop(), "accounts[0].drift"),
        (lambda d: d["accounts"][0]["decisions"].clear(), "accounts[0].decisions"),
        (lambda d: d["accounts"].pop(), "accounts (1 in the file, 2 when written)"),
        (lambda d: d["totals"].__setitem__("clips", 0), "totals"),
        (lambda d: d.__setitem__("extra", 1), "extra (added)"),
        (lambda d: d.pop("nav"), "nav (removed)"),
    ],
)
def test_edits_outside_the_orders_are_refused_and_named(document, change, named):
    assert named in refusal(edited(document, change))


def test_an_added_order_is_refused_as_added(document):
    def add(d):
        orders = d["accounts"][0]["orders"]
        orders.append({**orders[0], "leg": 99})

    problems = refusal(edited(document, add))
    assert f"accounts[0].orders[{len(document['accounts'][0]['orders'])}] (leg 99," in problems
    assert "added" in problems


def test_a_removed_order_is_refused_as_removed(document):
    problems = refusal(edited(document, lambda d: d["accounts"][0]["orders"].pop(0)))
    assert "accounts[0].orders (DU0000001): 1 order(s) removed (were orders[0])" in problems


def test_an_edited_derived_order_list_is_refused_naming_its_source(document):
    problems = refusal(edited(document, lambda d: d["orders"][0].__setitem__("quantity", 1.0)))
    assert "orders[0].quantity (differs from accounts[0].orders[0]" in problems


def test_a_number_respelled_counts_as_an_edit(document):
    def respell(d):
        order = d["accounts"][0]["orders"][0]
        order["ttl_seconds"] = int(order["ttl_seconds"])

    assert isinstance(document["accounts"][0]["orders"][0]["ttl_seconds"], float)
    assert "accounts[0].orders[0].ttl_seconds" in refusal(edited(document, respell))


def test_an_edited_digest_is_refused_saying_so(document):
    def forge(d):
        d[INTEGRITY_KEY]["digest"] = "0" * 64

    assert "the digest or the integrity member itself was edited" in refusal(
        edited(document, forge)
    )


def test_a_plan_without_a_seal_is_refused(document):
    problems = refusal(edited(document, lambda d: d.pop(INTEGRITY_KEY)))
    assert "carries no integrity digest" in problems


def test_a_seal_of_another_algorithm_is_refused(document):
    def md5(d):
        d[INTEGRITY_KEY]["algorithm"] = "md5"

    assert "unknown digest algorithm 'md5'" in refusal(edited(document, md5))


def test_a_mangled_seal_still_refuses_without_crashing(document):
    def mangle(d):
        d["plan_id"] = "x"
        d[INTEGRITY_KEY]["locate"] = {"accounts": "nonsense", "fields": 3}

    assert "does not match its SHA-256 digest" in refusal(edited(document, mangle))


def test_the_seal_costs_a_few_bytes_per_order():
    plan = two_account_plan()
    assert len(plan.orders) == 4  # a known, non-zero count: the bound below scales with it
    seal_size = len(json.dumps(to_document(plan)[INTEGRITY_KEY]))
    fixed = len(json.dumps(seal({"format": "x", "accounts": []})))
    accounts = len(plan.accounts) * 1200  # each account's member checksums
    assert seal_size - fixed - accounts < 15 * len(plan.orders)


# ---------------------------------------------------------------- one authoritative list


def test_derived_lists_that_disagree_under_a_recomputed_digest_are_refused(document):
    def change(d):
        d["orders"][1] = {**d["orders"][1], "quantity": 5.0}

    problems = refusal(resealed(edited(document, change)))
    assert "orders[1].quantity" in problems and "must equal accounts[].orders" in problems


def test_totals_that_disagree_with_the_orders_under_a_recomputed_digest_are_refused(document):
    problems = refusal(resealed(edited(document, lambda d: d["totals"].update(turnover=1.0))))
    assert "totals" in problems and "do not match the orders" in problems


def test_an_order_listed_under_another_account_is_refused_under_a_recomputed_digest(document):
    def move(d):
        order = d["accounts"][0]["orders"][0]
        order["account"] = "DU0000002"
        d["orders"][0] = order

    problems = refusal(resealed(edited(document, move)))
    assert "accounts[0].orders[0].account is DU0000002" in problems


def test_two_orders_with_one_leg_are_refused_under_a_recomputed_digest(document):
    def duplicate(d):
        a, b = d["accounts"][0]["orders"][:2]
        b["leg"] = a["leg"]

    problems = refusal(resealed(edited(document, duplicate)))
    assert f"accounts[0].orders[1].leg {document['accounts'][0]['orders'][0]['leg']}" in problems


# ---------------------------------------------------------------- not a plan


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not valid JSON"),
        ('{"format": "ib-reconciler/plan", "vers', "not valid JSON"),
        ("[1, 2]", "not an ib-reconciler plan file"),
        ('{"hello": 1}', "not an ib-reconciler plan file"),
        ('{"format": "ib-reconciler/plan", "version": 1}', "version 1 is not supported"),
    ],
)
def test_text_that_is_not_a_readable_plan_raises_a_plan_file_error(text, message):
    with pytest.raises(PlanFileError, match=message):
        loads(text)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda o: o.pop("quantity"), r"accounts\[0\].orders\[0\] has no quantity"),
        (lambda o: o.update(quantity="2000"), "quantity='2000'"),
        (lambda o: o.update(quantity=-5.0), "quantity=-5.0"),
        (lambda o: o.update(side="SHORT"), "side='SHORT'"),
        (lambda o: o.update(limit_price="300"), "limit_price='300'"),
        (lambda o: o.update(leg=True), "leg=True"),
    ],
)
def test_a_sealed_order_with_a_missing_or_mistyped_field_is_not_a_readable_plan(
    document, change, message
):
    def apply(d):
        change(d["accounts"][0]["orders"][0])
        d["orders"][0] = d["accounts"][0]["orders"][0]

    with pytest.raises(PlanFileError, match=message):
        from_dict(resealed(edited(document, apply)))


def test_a_sealed_plan_with_a_time_without_zone_is_not_a_readable_plan(document):
    naive = resealed(edited(document, lambda d: d.update(created_at="2026-11-20T15:30:00")))
    with pytest.raises(PlanFileError, match=r"created_at .* has no time zone"):
        from_dict(naive)
