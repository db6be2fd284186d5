"""Fuzzing the plan-file reader (`model.plan.loads`): truncated, reordered, edited, foreign
and wrong-version files. A refusal is always one of the two documented exceptions with a
message (`PlanFileError`: exit 1, `PlanIntegrityError`: exit 3), never another exception; an
edited plan is never accepted; a re-ordered or re-indented plan is the same plan."""

from __future__ import annotations

import contextlib
import copy
import json
import random

import pytest
from builders import NOW, Book, actual_of, desired_of, limits, portfolio, target
from hypothesis import assume, example, given
from hypothesis import strategies as st

from fuzz.profiles import fuzz_settings
from reconciler.decide.planner import build_plan
from reconciler.model.plan import (
    INTEGRITY_KEY,
    PlanFileError,
    PlanIntegrityError,
    canonical_json,
    dumps,
    loads,
)


def _plan():
    one = Book("DU0000001", cash=50_000.0).instrument("VTI", 290.0).instrument("BND", 73.0)
    two = Book("DU0000002", cash=40_000.0).hold("GLD", 10, price=240.0).instrument("TLT", 92.0)
    desired = desired_of(
        portfolio(target("VTI", weight=0.5), target("BND", weight=0.3), name="core"),
        portfolio(target("GLD", weight=0.1), target("TLT", weight=0.5), name="bal",
                  account="DU0000002"),
    )
    return build_plan(
        desired,
        actual_of(one, two),
        {**one.resolved(), **two.resolved()},
        {"default": limits(max_order_notional=15_000)},
        now=NOW,
        plan_id="20261120T1530Z-abcdef",
    )


PLAN = _plan()
TEXT = dumps(PLAN)
DOCUMENT = json.loads(TEXT)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=10,
)


def refused(text: str) -> Exception:
    """The reader's verdict on `text` must be a documented refusal with a message."""
    with pytest.raises((PlanFileError, PlanIntegrityError)) as caught:
        loads(text)
    assert str(caught.value).strip(), "a refusal without a message"
    return caught.value


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


PATHS = list(_paths(DOCUMENT))
QUANTITY = DOCUMENT["accounts"][0]["orders"]["columns"].index("quantity")


def _at(document, path):
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    return parent, path[-1]


def test_the_unedited_plan_file_is_accepted():
    assert loads(TEXT) == PLAN


@fuzz_settings()
@given(cut=st.integers(0, len(TEXT.rstrip()) - 1))
@example(cut=0)
@example(cut=len(TEXT.rstrip()) - 1)
def test_plan_reader_when_the_file_is_truncated_then_refuses(cut):
    assert isinstance(refused(TEXT[:cut]), PlanFileError)


@fuzz_settings()
@given(seed=st.integers(0, 2**32 - 1), indent=st.sampled_from([None, 0, 1, 4, "\t"]))
def test_plan_reader_when_keys_are_reordered_or_reindented_then_it_is_the_same_plan(
    seed, indent
):
    shuffle = random.Random(seed)

    def reorder(value):
        if isinstance(value, dict):
            items = [(k, reorder(v)) for k, v in value.items()]
            shuffle.shuffle(items)
            return dict(items)
        if isinstance(value, list):
            return [reorder(v) for v in value]
        return value

    assert loads(json.dumps(reorder(DOCUMENT), indent=indent)) == PLAN


@fuzz_settings()
@given(path=st.sampled_from(PATHS), new=JSON_VALUES,
       how=st.sampled_from(["replace", "delete", "add_sibling"]))
@example(path=("version",), new=2.0, how="replace")
@example(path=("accounts", 0, "orders", "rows", 0, QUANTITY), new=10**12, how="replace")
@example(path=("accounts", 0, "drift", "rows", 1), new=None, how="delete")
@example(path=("desired_snapshot", "DU0000002", "portfolio", "targets", "rows", 0, 1), new=0.9,
         how="replace")
@example(path=(INTEGRITY_KEY, "digest"), new="0" * 64, how="replace")
@example(path=(INTEGRITY_KEY,), new=None, how="delete")
def test_plan_reader_when_any_value_is_edited_then_refuses(path, new, how):
    edited = copy.deepcopy(DOCUMENT)
    parent, key = _at(edited, path)
    if how == "replace":
        assume(canonical_json(parent[key]) != canonical_json(new))
        parent[key] = new
    elif how == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        assume("fuzz-added" not in parent)
        parent["fuzz-added"] = new
    else:
        parent.insert(key, new)
    text = json.dumps(edited, indent=2)
    if path[0] == INTEGRITY_KEY and path[1:2] not in (("digest",), ("algorithm",)) and (
        len(path) > 1 or how == "add_sibling"
    ):
        # The seal's part checksums only help name an edit; they are outside the digest, so
        # editing them may be accepted, but only as the very plan that was sealed.
        with contextlib.suppress(PlanFileError, PlanIntegrityError):
            assert loads(text) == PLAN
        return
    refused(text)


@fuzz_settings()
@given(value=JSON_VALUES)
@example(value={"format": "ib-reconciler/plan"})
@example(value={"format": "ib-reconciler/plan", "version": 2, "integrity": {}})
@example(value={"format": "ib-reconciler/plan", "version": 2, "accounts": "x",
                "integrity": {"algorithm": "sha256", "digest": 7}})
def test_plan_reader_when_the_json_is_foreign_then_refuses(value):
    refused(json.dumps(value))


@fuzz_settings()
@given(version=JSON_VALUES)
@example(version=1)
@example(version=3)
@example(version=4.0)
@example(version="2")
def test_plan_reader_when_the_version_is_another_then_refuses(version):
    assume(canonical_json(version) != canonical_json(DOCUMENT["version"]))
    edited = {**DOCUMENT, "version": version}
    error = refused(json.dumps(edited))
    if version != DOCUMENT["version"]:  # 2.0 == 2: caught by the digest instead
        assert isinstance(error, PlanFileError) and "version" in str(error)


@fuzz_settings()
@given(text=st.text(max_size=300))
@example(text="[" * 100_000)
@example(text='{"format": "ib-reconciler/plan", "version": 2, "x": ' + "[" * 50_000)
@example(text="NaN")
def test_plan_reader_when_the_text_is_arbitrary_then_refuses(text):
    refused(text)
