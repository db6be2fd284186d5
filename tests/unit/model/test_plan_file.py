"""The plan file (format version 4): its tables, the SHA-256 seal and naming what was edited,
the one authoritative list of orders, and clear errors for files that are not plans."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import orjson
import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.decide.planner import build_plan
from reconciler.model.plan import (
    INTEGRITY_KEY,
    AccountPlan,
    DriftRow,
    PlanFileError,
    PlanIntegrityError,
    PlannedOrder,
    RiskDecision,
    canonical_json,
    content_digest,
    dumps,
    from_dict,
    loads,
    seal,
    sealed_as_written,
    to_dict,
    to_document,
)

ORDER_FIELDS = [f.name for f in dataclasses.fields(PlannedOrder) if f.name != "account"]


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
    assert len(doc["accounts"]) == 2 and all(a["orders"]["rows"] for a in doc["accounts"])
    assert any(a["decisions"]["rows"] for a in doc["accounts"]), "the example needs decisions"
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


def unreadable(document: dict) -> str:
    with pytest.raises(PlanFileError) as caught:
        from_dict(document)
    return str(caught.value)


def cell(document: dict, account: int, kind: str, row: int, field: str):
    table = document["accounts"][account][kind]
    return table["rows"][row][table["columns"].index(field)]


def set_cell(document: dict, account: int, kind: str, row: int, field: str, value) -> None:
    table = document["accounts"][account][kind]
    table["rows"][row][table["columns"].index(field)] = value


def other_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return 1.0
    if isinstance(value, dict):
        return {**value, "edited": 1}
    return value + "x"


# ---------------------------------------------------------------- the tables


def test_drift_orders_and_decisions_are_tables_without_the_account_in_each_row(document):
    account = document["accounts"][0]
    for kind, cls_fields in (
        ("orders", ORDER_FIELDS),
        ("drift", ["key", "symbol", "status", "quantity", "in_band", "in_flight"]),
        ("decisions", ["code", "action", "key", "detail"]),
    ):
        assert set(account[kind]) == {"columns", "rows"}
        assert "account" not in account[kind]["columns"]
        assert set(cls_fields) <= set(account[kind]["columns"])
        assert all(len(r) == len(account[kind]["columns"]) for r in account[kind]["rows"])
    assert account["account"] == "DU0000001"
    assert isinstance(cell(document, 0, "decisions", 0, "detail"), dict)


def test_the_file_carries_no_top_level_copies_of_the_orders_or_decisions(document):
    assert "orders" not in document and "decisions" not in document
    assert document["totals"]["orders"] == sum(len(a["orders"]["rows"]) for a in document["accounts"])


def test_a_loaded_plan_is_the_plan_that_was_written():
    plan = two_account_plan()
    again = loads(dumps(plan))
    assert again == plan
    assert [o.account for o in again.orders] == [o.account for o in plan.orders]
    assert again.desired_snapshot == plan.desired_snapshot


def large_plan():
    plan = two_account_plan()
    row = dataclasses.replace(plan.accounts[0].drift[0], key="X")
    return dataclasses.replace(
        plan,
        accounts=(dataclasses.replace(plan.accounts[0], drift=(row,) * 5000), *plan.accounts[1:]),
    )


def test_a_large_plan_is_written_compactly_and_reads_back_the_same():
    large = large_plan()
    text = dumps(large)
    assert "\n" not in text and text.endswith("}")
    assert sealed_as_written(text, json.loads(text))  # verified from its bytes
    assert loads(text) == large
    reindented = json.dumps(json.loads(text), indent=1)
    assert not sealed_as_written(reindented, json.loads(reindented))
    assert loads(reindented) == large  # verified the long way: the same plan


def test_an_edited_compact_plan_is_refused_naming_the_edit():
    large = large_plan()
    text = dumps(large)
    leg = large.accounts[1].orders[0].leg
    quantity = json.dumps(large.accounts[1].orders[0].quantity)
    document = json.loads(text)
    columns = document["accounts"][1]["orders"]["columns"]
    row = document["accounts"][1]["orders"]["rows"][0]
    row[columns.index("quantity")] = 1.0
    edited_text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()
    assert quantity != "1.0" and not sealed_as_written(edited_text, document)
    with pytest.raises(PlanIntegrityError) as caught:
        loads(edited_text)
    assert f"edited: accounts[1].orders[0].quantity (leg {leg}, DU0000002" in "\n".join(
        caught.value.problems
    )


# ---------------------------------------------------------------- the desired snapshot


def shared_targets_plan(same: bool):
    books = [Book(f"DU000000{n}", cash=50_000.0).instrument("VTI", 290.0) for n in (1, 2, 3)]
    books = [b.instrument("BND", 73.0) for b in books]
    weight = 0.3 if same else 0.2
    desired = desired_of(
        portfolio(target("VTI", weight=0.5), target("BND", weight=0.3), name="one"),
        portfolio(
            target("VTI", weight=0.5), target("BND", weight=weight), name="two", account="DU0000002"
        ),
        portfolio(
            target("VTI", weight=0.5), target("BND", weight=0.3), name="three", account="DU0000003"
        ),
    )
    resolved = {k: v for b in books for k, v in b.resolved().items()}
    return build_plan(
        desired, actual_of(*books), resolved, {"default": limits()}, now=NOW, plan_id="p-shared"
    )


def test_identical_target_tables_are_written_once_and_read_back_for_every_account():
    plan = shared_targets_plan(same=True)
    snapshot = to_dict(plan)["desired_snapshot"]
    targets = {a: s["portfolio"]["targets"] for a, s in snapshot.items()}
    assert targets["DU0000001"]["columns"][:3] == ["key", "weight", "quantity"]
    assert "instrument.symbol" in targets["DU0000001"]["columns"]
    assert targets["DU0000002"] == {"same_as": "DU0000001"}
    assert targets["DU0000003"] == {"same_as": "DU0000001"}
    again = loads(dumps(plan))
    assert again.desired_snapshot == plan.desired_snapshot
    assert again.desired_snapshot["DU0000003"]["portfolio"]["targets"]["BND"]["weight"] == 0.3
    assert again.desired_snapshot["DU0000002"]["portfolio"]["name"] == "two"


def test_different_target_tables_are_each_written_and_read_back():
    plan = shared_targets_plan(same=False)
    snapshot = to_dict(plan)["desired_snapshot"]
    targets = {a: s["portfolio"]["targets"] for a, s in snapshot.items()}
    assert "rows" in targets["DU0000002"]  # 20% BND: its own table
    assert targets["DU0000003"] == {"same_as": "DU0000001"}
    again = loads(dumps(plan))
    assert again.desired_snapshot == plan.desired_snapshot
    assert again.desired_snapshot["DU0000002"]["portfolio"]["targets"]["BND"]["weight"] == 0.2


def test_targets_of_another_shape_are_kept_as_they_are():
    plan = dataclasses.replace(
        two_account_plan(),
        desired_snapshot={
            "DU0000001": {"portfolio": {"targets": {"VTI": 0.5}}},
            "DU0000002": {"portfolio": {"name": "no targets"}},
            "DU0000003": "not a snapshot",
        },
    )
    assert to_dict(plan)["desired_snapshot"]["DU0000001"]["portfolio"]["targets"] == {
        "value": {"VTI": 0.5}
    }
    assert loads(dumps(plan)) == plan


def test_a_target_reference_to_no_earlier_account_is_not_a_readable_plan():
    plan = shared_targets_plan(same=True)
    document = to_document(plan)

    def dangle(d):
        d["desired_snapshot"]["DU0000002"]["portfolio"]["targets"] = {"same_as": "DU0000009"}

    message = unreadable(resealed(edited(document, dangle)))
    assert "desired_snapshot.DU0000002.portfolio.targets.same_as 'DU0000009' is not" in message


def test_a_target_reference_reads_back_whatever_the_member_order():
    plan = shared_targets_plan(same=True)
    document = to_document(plan)
    snapshot = document["desired_snapshot"]
    document["desired_snapshot"] = dict(reversed(list(snapshot.items())))  # references first
    assert next(iter(document["desired_snapshot"])) == "DU0000003"
    assert from_dict(document).desired_snapshot == plan.desired_snapshot


def test_a_reference_to_a_reference_is_not_a_readable_plan():
    plan = shared_targets_plan(same=True)

    def chain(d):
        d["desired_snapshot"]["DU0000003"]["portfolio"]["targets"] = {"same_as": "DU0000002"}

    message = unreadable(resealed(edited(to_document(plan), chain)))
    assert "same_as 'DU0000002' is not an account whose targets are written out" in message


# ---------------------------------------------------------------- the seal


def test_digest_is_sha256_of_the_canonical_json_of_the_document_without_its_seal(document):
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    # Format 3 on: orjson's canonical form (sorted keys, no whitespace, UTF-8).
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


@pytest.mark.parametrize("field", ORDER_FIELDS)
def test_any_edited_order_field_is_refused_naming_the_order_and_the_field(document, field):
    def change(d):
        set_cell(d, 1, "orders", 0, field, other_value(cell(d, 1, "orders", 0, field)))

    problems = refusal(edited(document, change))
    assert "does not match its SHA-256 digest" in problems
    assert f"accounts[1].orders[0].{field} (leg " in problems
    if field not in ("side", "symbol", "leg"):  # the label shows the file's values
        leg, side, symbol = (cell(document, 1, "orders", 0, f) for f in ("leg", "side", "symbol"))
        label = f"(leg {leg}, DU0000002 {side} {symbol})"
        assert f"accounts[1].orders[0].{field} {label}" in problems


def test_an_edited_order_quantity_is_located_by_its_leg_and_field(document):
    leg = cell(document, 0, "orders", 1, "leg")
    problems = refusal(edited(document, lambda d: set_cell(d, 0, "orders", 1, "quantity", 1.0)))
    side, symbol = cell(document, 0, "orders", 1, "side"), cell(document, 0, "orders", 1, "symbol")
    assert f"edited: accounts[0].orders[1].quantity (leg {leg}, DU0000001 {side} {symbol})" in (
        problems.splitlines()
    )


def test_an_edited_drift_cell_is_located_by_its_row(document):
    key = cell(document, 1, "drift", 1, "key")
    problems = refusal(edited(document, lambda d: set_cell(d, 1, "drift", 1, "price", 1.0)))
    assert f"edited: accounts[1].drift[1] (DU0000002 {key})" in problems.splitlines()


def test_a_dropped_drift_row_is_located(document):
    problems = refusal(edited(document, lambda d: d["accounts"][0]["drift"]["rows"].pop(0)))
    assert "accounts[0].drift (DU0000001): 1 drift row(s) removed (were drift[0])" in problems


def test_an_edited_decision_detail_is_located_by_its_row(document):
    account = next(i for i, a in enumerate(document["accounts"]) if a["decisions"]["rows"])
    code = cell(document, account, "decisions", 0, "code")

    def change(d):
        set_cell(d, account, "decisions", 0, "detail", {"max": 1})

    assert f"accounts[{account}].decisions[0] (DU000000{account + 1} {code}" in refusal(
        edited(document, change)
    )


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
        (lambda d: d["accounts"][0]["drift"]["rows"].pop(), "accounts[0].drift"),
        (lambda d: d["accounts"][0]["decisions"]["rows"].clear(), "accounts[0].decisions"),
        (lambda d: d["accounts"][0]["orders"]["columns"].reverse(), "accounts[0].orders.columns"),
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
        rows = d["accounts"][0]["orders"]["rows"]
        rows.append(list(rows[0]))
        set_cell(d, 0, "orders", len(rows) - 1, "leg", 99)

    problems = refusal(edited(document, add))
    added = len(document["accounts"][0]["orders"]["rows"])
    assert f"accounts[0].orders[{added}] (leg 99, DU0000001" in problems
    assert "added" in problems


def test_a_removed_order_is_refused_as_removed(document):
    problems = refusal(edited(document, lambda d: d["accounts"][0]["orders"]["rows"].pop(0)))
    assert "accounts[0].orders (DU0000001): 1 order(s) removed (were orders[0])" in problems


def test_a_number_respelled_counts_as_an_edit(document):
    def respell(d):
        set_cell(d, 0, "orders", 0, "ttl_seconds", int(cell(d, 0, "orders", 0, "ttl_seconds")))

    assert isinstance(cell(document, 0, "orders", 0, "ttl_seconds"), float)
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


def test_the_seal_costs_a_few_bytes_per_row():
    plan = two_account_plan()
    rows = sum(len(a.orders) + len(a.drift) + len(a.decisions) for a in plan.accounts)
    assert rows >= 8  # a known, non-zero count: the bound below scales with it
    seal_size = len(json.dumps(to_document(plan)[INTEGRITY_KEY]))
    fixed = len(json.dumps(seal({"format": "x", "accounts": []})))
    accounts = len(plan.accounts) * 1200  # each account's member and order-column checksums
    assert seal_size - fixed - accounts < 6 * rows


# ---------------------------------------------------------------- one authoritative list


def test_top_level_order_or_decision_lists_under_a_recomputed_digest_are_refused(document):
    def add(d):
        d["orders"] = []
        d["decisions"] = []

    problems = refusal(resealed(edited(document, add)))
    assert "orders: a version 4 plan has no top-level orders" in problems
    assert "decisions: a version 4 plan has no top-level decisions" in problems


def test_totals_that_disagree_with_the_orders_under_a_recomputed_digest_are_refused(document):
    problems = refusal(resealed(edited(document, lambda d: d["totals"].update(turnover=1.0))))
    assert "totals" in problems and "do not match the orders" in problems


def test_the_account_of_each_row_is_its_table_s_account(document):
    plan = from_dict(document)
    assert all(o.account == a.account for a in plan.accounts for o in a.orders)
    assert all(r.account == a.account for a in plan.accounts for r in (*a.drift, *a.decisions))


def test_two_orders_with_one_leg_are_refused_under_a_recomputed_digest(document):
    def duplicate(d):
        set_cell(d, 0, "orders", 1, "leg", cell(d, 0, "orders", 0, "leg"))

    problems = refusal(resealed(edited(document, duplicate)))
    assert f"accounts[0].orders[1].leg {cell(document, 0, 'orders', 0, 'leg')}" in problems


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


def test_a_version_3_plan_file_is_refused_asking_for_a_new_plan(document):
    old = edited(document, lambda d: d.update(version=3, orders=[], decisions=[]))
    message = unreadable(old)
    assert "plan format version 3 is not supported (this reconciler reads version 4)" in message
    assert "make a new plan with `reconcile plan --out FILE`" in message


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["columns"].pop(), r"accounts\[0\].orders.columns: missing min_trade_notional"),
        (lambda t: t["columns"].append("colour"), r"accounts\[0\].orders.columns: unknown colour"),
        (
            lambda t: t["columns"].__setitem__(0, "key"),
            r"accounts\[0\].orders.columns: missing leg; repeated key",
        ),
        (lambda t: t.pop("columns"), r"accounts\[0\].orders is missing or not a table"),
        (lambda t: t["rows"][0].pop(), r"accounts\[0\].orders\[0\] is not a row of 20 values"),
    ],
)
def test_a_sealed_table_with_wrong_columns_is_not_a_readable_plan_naming_its_path(
    document, change, message
):
    def apply(d):
        change(d["accounts"][0]["orders"])

    with pytest.raises(PlanFileError, match=message):
        from_dict(resealed(edited(document, apply)))


@pytest.mark.parametrize("kind", ["drift", "decisions"])
def test_a_sealed_drift_or_decision_table_with_an_unknown_column_is_not_readable(document, kind):
    def rename(d):
        d["accounts"][1][kind]["columns"][0] = "colour"

    message = unreadable(resealed(edited(document, rename)))
    assert f"accounts[1].{kind}.columns: missing " in message and "unknown colour" in message


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("quantity", "2000", "quantity='2000'"),
        ("quantity", -5.0, "quantity=-5.0"),
        ("side", "SHORT", "side='SHORT'"),
        ("limit_price", "300", "limit_price='300'"),
        ("leg", True, "leg=True"),
        ("leg", 0, "leg=0"),
        ("con_id", 1.5, "con_id=1.5"),
        ("outside_rth", 0, "outside_rth=0"),
        ("reason", None, "reason=None"),
    ],
)
def test_a_sealed_order_with_a_mistyped_field_is_not_a_readable_plan(
    document, field, value, message
):
    def apply(d):
        set_cell(d, 0, "orders", 1, field, value)

    with pytest.raises(PlanFileError, match=r"accounts\[0\].orders\[1\] has invalid field"):
        from_dict(resealed(edited(document, apply)))
    assert message in unreadable(resealed(edited(document, apply)))


def test_a_sealed_decision_whose_detail_is_not_an_object_is_not_a_readable_plan(document):
    account = next(i for i, a in enumerate(document["accounts"]) if a["decisions"]["rows"])

    def apply(d):
        set_cell(d, account, "decisions", 0, "detail", "max=1")

    assert f"accounts[{account}].decisions[0].detail is not an object" in unreadable(
        resealed(edited(document, apply))
    )


def test_a_sealed_plan_with_a_time_without_zone_is_not_a_readable_plan(document):
    naive = resealed(edited(document, lambda d: d.update(created_at="2026-11-20T15:30:00")))
    with pytest.raises(PlanFileError, match=r"created_at .* has no time zone"):
        from_dict(naive)


# ---------------------------------------------------------------- any plan round-trips

NAMES = st.text("ABCDXYZ019 ._-é", min_size=1, max_size=6)
NUMBERS = st.floats(-1e12, 1e12, allow_nan=False) | st.integers(-(10**12), 10**12)
POSITIVE = st.floats(1e-6, 1e9) | st.integers(1, 10**9)
OPTIONAL = st.none() | NUMBERS


def drift_rows(account: str):
    return st.builds(
        DriftRow, account=st.just(account), key=NAMES, symbol=NAMES,
        con_id=st.none() | st.integers(1, 10**9), status=st.sampled_from(["managed", "unmanaged"]),
        quantity=NUMBERS, price=OPTIONAL, market_value=OPTIONAL, current_weight=OPTIONAL,
        target_weight=OPTIONAL, target_quantity=OPTIONAL, drift=OPTIONAL, in_band=st.booleans(),
        in_flight=NUMBERS,
    )


def orders(account: str, legs: list[int]):
    return st.tuples(*[
        st.builds(
            PlannedOrder, leg=st.just(leg), account=st.just(account), key=NAMES, symbol=NAMES,
            con_id=st.integers(1, 10**9), sec_type=NAMES, exchange=NAMES, primary_exchange=NAMES,
            currency=NAMES, side=st.sampled_from(["BUY", "SELL"]), quantity=POSITIVE,
            order_type=NAMES, limit_price=st.none() | POSITIVE, time_in_force=NAMES,
            ttl_seconds=NUMBERS, outside_rth=st.booleans(), arrival_price=NUMBERS,
            est_notional=NUMBERS, est_commission=NUMBERS, reason=st.text(max_size=20),
            min_trade_notional=NUMBERS,
        )
        for leg in legs
    ])


def decisions(account: str):
    return st.builds(
        RiskDecision, code=NAMES, action=st.sampled_from(["clip", "deny"]),
        account=st.just(account), key=NAMES, side=st.sampled_from(["BUY", "SELL"]),
        requested_quantity=NUMBERS, allowed_quantity=NUMBERS,
        detail=st.dictionaries(NAMES, st.none() | NUMBERS | NAMES | st.lists(NUMBERS, max_size=2),
                               max_size=3),
    )


def target_tables():
    instrument = st.fixed_dictionaries(
        {"symbol": NAMES, "sec_type": NAMES, "con_id": st.none() | st.integers(1, 10**6)}
    )
    target = st.fixed_dictionaries(
        {"instrument": instrument, "weight": OPTIONAL, "quantity": OPTIONAL}
    )
    return st.dictionaries(NAMES, target, max_size=4)


@st.composite
def plans(draw):
    names = draw(st.lists(st.sampled_from([f"DU000000{n}" for n in range(1, 6)]), min_size=1,
                          max_size=4, unique=True))
    tables = draw(st.lists(target_tables(), min_size=1, max_size=2))
    leg = 0
    accounts = []
    for name in names:
        count = draw(st.integers(0, 3))
        legs = list(range(leg + 1, leg + 1 + count))
        leg += count
        accounts.append(AccountPlan(
            account=name, portfolio=draw(NAMES), risk_policy="default", base_currency="USD",
            net_liquidation=draw(NUMBERS), capital=draw(NUMBERS),
            drift=tuple(draw(st.lists(drift_rows(name), max_size=3))),
            orders=draw(orders(name, legs)),
            decisions=tuple(draw(st.lists(decisions(name), max_size=2))),
            notes=tuple(draw(st.lists(st.text(max_size=8), max_size=2))),
            cash_for_buys=draw(OPTIONAL),
        ))
    snapshot = {
        name: {"portfolio": {"name": name, "targets": draw(st.sampled_from(tables))},
               "riskPolicy": None}
        for name in names
    }
    return dataclasses.replace(
        two_account_plan(), accounts=tuple(accounts), desired_snapshot=snapshot,
        nav={name: 1.0 for name in names},
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans())
def test_any_plan_reads_back_as_the_plan_written_indented_or_compact(plan):
    assert loads(dumps(plan)) == plan
    document = to_document(plan)
    compact = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    assert loads(compact) == plan
    assert from_dict(json.loads(json.dumps(document))) == plan
