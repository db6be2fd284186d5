"""The plan: a value and a file (Terraform style).

Responsible for the plan artifact's types (`Plan`, `PlannedOrder`, `RiskDecision`,
`DriftRow`, `AccountPlan`), its versioned JSON form (`to_dict`/`from_dict`, `dumps`/`loads`),
the file's integrity seal (a SHA-256 digest over the canonical document, checked by the
reader, which names what was edited) and the deterministic `order_ref` of a leg. Must not
compute plans (that is `planner` and `risk`), talk to a broker, read files or print.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import hashlib
import math
import operator
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

_T = TypeVar("_T")

# 2: the file carries an `integrity` seal (SHA-256 digest); version 1 files are refused.
# 3: the canonical JSON the digest is taken over is orjson's (UTF-8, shortest floats), ~10x
#    faster to seal and verify than the standard library's; version 2 files are refused.
PLAN_FORMAT_VERSION = 3

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


@dataclass(frozen=True)
class DriftRow:
    """One instrument of one account, before any order: where it is against its target."""

    account: str
    key: str
    symbol: str
    con_id: int | None
    status: str  # managed | unmanaged | missing-price
    quantity: float
    price: float | None
    market_value: float | None  # base currency
    current_weight: float | None
    target_weight: float | None
    target_quantity: float | None
    drift: float | None  # current_weight - target_weight (weight points)
    in_band: bool
    in_flight: float = 0.0  # signed remaining quantity of open orders already working


@dataclass(frozen=True)
class PlannedOrder:
    leg: int
    account: str
    key: str
    symbol: str
    con_id: int
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    side: str  # BUY | SELL
    quantity: float
    order_type: str
    limit_price: float | None
    time_in_force: str
    ttl_seconds: float
    outside_rth: bool
    arrival_price: float  # the reference price the order was sized with
    est_notional: float  # base currency, always positive
    est_commission: float
    reason: str  # which target and which drift
    # The portfolio's minTradeNotional (base currency): the executor never shrinks the order
    # below it. Optional so that plan files written before it existed still load.
    min_trade_notional: float = 0.0

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True)
class RiskDecision:
    """A risk check's verdict on one order: clipped to fit, or denied."""

    code: str  # SCREAMING_SNAKE, e.g. NOTIONAL_EXCEEDS_MAX_PER_ORDER
    action: str  # clip | deny
    account: str
    key: str
    side: str
    requested_quantity: float
    allowed_quantity: float
    detail: Mapping[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        kv = " ".join(f"{k}={_fmt(v)}" for k, v in self.detail.items())
        return f"{self.code}: {kv}".rstrip(": ").rstrip()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"
    return str(value)


@dataclass(frozen=True)
class AccountPlan:
    account: str
    portfolio: str
    risk_policy: str
    base_currency: str
    net_liquidation: float
    capital: float
    drift: tuple[DriftRow, ...]
    orders: tuple[PlannedOrder, ...]
    decisions: tuple[RiskDecision, ...]
    notes: tuple[str, ...] = ()
    # Base-currency cash the planner fitted the buys into (None: no buys were planned). Apply
    # shrinks buys only when sells fell short by more than the room this leaves.
    cash_for_buys: float | None = None

    @property
    def turnover(self) -> float:
        return sum(o.est_notional for o in self.orders)


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: dt.datetime
    desired_hash: str
    git_commit: str | None
    git_dirty: bool | None
    actual_fingerprint: str
    fingerprint_parts: Mapping[str, str]
    snapshot_time: dt.datetime
    quotes: Mapping[str, Mapping[str, Any]]  # conId (str) -> {symbol, bid, ask, last, time, ...}
    nav: Mapping[str, float]  # account -> NAV at plan time
    accounts: tuple[AccountPlan, ...]
    desired_snapshot: Mapping[str, Any] = field(default_factory=dict)
    version: int = PLAN_FORMAT_VERSION
    # Configuration problems the operator must see with the plan (settings.settings_warnings:
    # an unknown variable, an EXEC_RISK_* override set but not applied). Sealed by the digest;
    # absent from files written before they existed (read as none).
    warnings: tuple[str, ...] = ()
    # What the desired state changed, in YAML words (`{"against": "origin/main (`abc`)",
    # "changes": [...]}`; empty: not compared). Absent from older files (read as empty).
    desired_changes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def orders(self) -> tuple[PlannedOrder, ...]:
        return tuple(o for a in self.accounts for o in a.orders)

    @property
    def decisions(self) -> tuple[RiskDecision, ...]:
        return tuple(d for a in self.accounts for d in a.decisions)

    @property
    def has_changes(self) -> bool:
        return bool(self.orders)

    @property
    def totals(self) -> dict[str, float]:
        return {
            "orders": len(self.orders),
            "turnover": round(sum(o.est_notional for o in self.orders), 2),
            "est_commission": round(sum(o.est_commission for o in self.orders), 2),
            "denials": sum(1 for d in self.decisions if d.action == "deny"),
            "clips": sum(1 for d in self.decisions if d.action == "clip"),
        }


def evolve(value: Any, **changes: Any) -> Any:
    """`dataclasses.replace` for the plan's flat value types, without re-running `__init__`
    (a frozen dataclass sets each field through `object.__setattr__`, several times slower):
    a copy of the instance dict with `changes` applied. Only for these types, which have no
    `__post_init__` and no slots; `changes` must name fields."""
    copy = object.__new__(type(value))
    state = copy.__dict__
    state.update(value.__dict__)
    state.update(changes)
    return copy


def make(cls: type[_T], **values: Any) -> _T:
    """`cls(**values)` for the plan's flat value types without the frozen `__init__`'s
    per-field `object.__setattr__` (the planner builds ~10^5 of them per large plan): the
    same arguments, defaults and errors as `cls(...)`, through `constructor(cls)`."""
    return constructor(cls)(**values)  # type: ignore[no-any-return]


@functools.cache
def constructor(cls: type[_T]) -> Any:
    """A fast constructor for one of the plan's frozen value types: a function taking the
    dataclass's fields (positionally or by name, plain defaults kept; a field with a
    default factory must be given) that fills the instance dict in one step.

    Generated from `dataclasses.fields(cls)` the way `dataclasses` writes `__init__`, so it
    cannot disagree with the type's fields. Only for flat types without `__post_init__` or
    slots. A frozen `__init__` sets each field through `object.__setattr__`; this costs
    about a third of that, which matters at 10^5 rows per plan.
    """
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: no fast constructor for types with slots or checks")
    params, items, defaults = [], [], {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            params.append(f.name)
        items.append(f"{f.name!r}: {f.name}")
    source = (
        f"def new_{cls.__name__}({', '.join(params)}):\n"
        f"    made = _new(_cls)\n"
        f"    _set(made, '__dict__', {{{', '.join(items)}}})\n"
        f"    return made\n"
    )
    namespace: dict[str, Any] = {
        "_new": object.__new__, "_set": object.__setattr__, "_cls": cls, **defaults
    }
    exec(source, namespace)  # generated from the fields, as dataclasses writes __init__
    return namespace[f"new_{cls.__name__}"]


def with_warnings(plan: Plan, warnings: Sequence[str]) -> Plan:
    """The same plan also carrying `warnings` (each once, in order of first appearance)."""
    merged = tuple(dict.fromkeys((*plan.warnings, *warnings)))
    return plan if merged == plan.warnings else dataclasses.replace(plan, warnings=merged)


def order_ref(plan_id: str, leg: int) -> str:
    """Deterministic orderRef for a leg of a plan: the key that makes apply idempotent."""
    return f"rc-{plan_id}-{leg:03d}"


# ---------------------------------------------------------------- JSON form
#
# The file is the plan document (`to_dict`) plus an `integrity` member that seals it:
# - `digest`: SHA-256 (hex) of the canonical JSON of the document without `integrity`
#   (keys sorted, no whitespace, ASCII; `canonical_json`). The digest is over the JSON
#   values, not the bytes: re-indenting or reordering keys keeps it, any changed value
#   (a number respelled, 20.0 as 20, included) breaks it.
# - `locate`: small CRC-32 checksums of the document's parts (each top-level member, each
#   account's members, each order, and each order field across an account's orders). They
#   decide nothing; they only let the reader say *where* a document that fails its digest
#   was edited. A few bytes per order, so large plans stay about the same size.
# `accounts[].orders` is the one authoritative list of orders; the top-level `orders`,
# `decisions` and `totals` are derived copies for readers, rebuilt by `from_dict`, which
# refuses a file where they disagree.
# A digest is not a signature: whoever can write the file can recompute it. It catches an
# edited plan; apply's risk re-check (decide.risk.recheck_plan) bounds a forged one.

PLAN_FORMAT = "ib-reconciler/plan"
INTEGRITY_KEY = "integrity"
DIGEST_ALGORITHM = "sha256"
_DERIVED = ("orders", "decisions", "totals")
_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(PlannedOrder))
_MISSING = "\x00missing"
_MAX_PROBLEMS = 20


class PlanFileError(ValueError):
    """Not a plan this reconciler can read: not JSON (or truncated), not a plan, another
    format version, a missing or mistyped field. The CLI exits 1."""


class PlanIntegrityError(ValueError):
    """The plan is not the one `reconcile plan` wrote: no digest, a digest that does not
    match, or derived copies that disagree with the orders. `problems` say where (JSON
    paths). The CLI exits 3: refused, nothing sent."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _flat(value: Any) -> dict[str, Any]:
    """A flat frozen dataclass as a dict, in field order; faster than dataclasses.asdict's
    deep copy."""
    names, values = _getter(type(value))
    return dict(zip(names, values(value), strict=True))


@functools.cache
def _getter(cls: type) -> tuple[tuple[str, ...], Any]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    get = operator.attrgetter(*names)
    return names, (get if len(names) > 1 else lambda v: (get(v),))


def to_dict(plan: Plan) -> dict[str, Any]:
    """The plan document without its seal (the store keeps this form)."""
    accounts = []
    for a in plan.accounts:
        body = _flat(a)
        body["drift"] = [_flat(r) for r in a.drift]
        body["orders"] = [_flat(o) for o in a.orders]
        body["decisions"] = [{**_flat(d), "detail": dict(d.detail)} for d in a.decisions]
        body["notes"] = list(a.notes)
        accounts.append(body)
    body = _flat(plan)
    body.update(
        created_at=plan.created_at.isoformat(),
        snapshot_time=plan.snapshot_time.isoformat(),
        fingerprint_parts=dict(plan.fingerprint_parts),
        quotes={k: dict(v) for k, v in plan.quotes.items()},
        nav=dict(plan.nav),
        accounts=accounts,
        desired_snapshot=dict(plan.desired_snapshot),
        warnings=list(plan.warnings),
        desired_changes=_changes_dict(plan.desired_changes),
        **_derived(accounts),
        totals=plan.totals,
    )
    return {"format": PLAN_FORMAT, **body}


def _derived(accounts: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The flat views across accounts (same objects, not copies)."""
    return {
        "orders": [o for a in accounts for o in a["orders"]],
        "decisions": [d for a in accounts for d in a["decisions"]],
    }


def to_document(plan: Plan) -> dict[str, Any]:
    """The plan file's content: the document and its `integrity` seal."""
    document = to_dict(plan)
    document[INTEGRITY_KEY] = seal(document)
    return document


def dumps(plan: Plan) -> str:
    # Indented for review in a PR; very large plans are written compactly (several times
    # faster and smaller) since nobody reads them by eye.
    rows = sum(len(a.orders) + len(a.drift) for a in plan.accounts)
    option = orjson.OPT_INDENT_2 if rows < 5000 else 0
    return orjson.dumps(
        to_document(plan), option=option | _CANONICAL & ~orjson.OPT_SORT_KEYS, default=str
    ).decode()


def loads(text: str | bytes) -> Plan:
    """Parse, verify and build a plan file; `PlanFileError` or `PlanIntegrityError`."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise PlanFileError(f"not valid JSON (truncated or not a plan file?): {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - orjson reports depth as a decode error
        raise PlanFileError("not a plan file: JSON nested too deeply") from exc
    return from_dict(data)


def from_dict(data: Any) -> Plan:
    """A sealed plan document as a `Plan`, after checking its format, version, digest and
    derived copies, and the types of every order field."""
    if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
        raise PlanFileError("not an ib-reconciler plan file (missing format marker)")
    if data.get("version") != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"plan format version {data.get('version')!r} is not supported "
            f"(this reconciler reads version {PLAN_FORMAT_VERSION}); make a new plan with "
            "`reconcile plan --out FILE`"
        )
    verify(data)
    plan = _build(data)
    _check_derived(data, plan)
    return plan


# ---------------------------------------------------------------- seal and verify


def canonical_json(value: Any) -> str:
    """The canonical JSON text the digest is taken over: orjson's, with sorted keys and no
    whitespace (UTF-8; floats in their shortest form; other values as `str`)."""
    return orjson.dumps(value, option=_CANONICAL, default=str).decode()


def _canonical_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=_CANONICAL, default=str)


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('utf-8', 'surrogatepass')):08x}"


def _order_tokens(order: Mapping[str, Any]) -> list[str]:
    return [repr(order.get(name, _MISSING)) for name in _ORDER_FIELDS]


def _account_parts(account: Mapping[str, Any], digest, locate: bool) -> dict[str, Any] | None:
    """Feed one account's canonical JSON to `digest`, member by member (sorted keys)."""
    parts: dict[str, Any] = {"fields": {}}
    digest.update(b"{")
    for n, key in enumerate(sorted(account)):
        piece = canonical_json(account[key])
        digest.update((("," if n else "") + canonical_json(key) + ":" + piece).encode())
        if locate and key != "orders":
            parts["fields"][key] = _crc(piece)
    digest.update(b"}")
    if not locate:
        return None
    orders = account.get("orders")
    if isinstance(orders, list) and all(isinstance(o, Mapping) for o in orders):
        rows = [_order_tokens(o) for o in orders]
        parts["orders"] = [_crc("\x1f".join(row)) for row in rows]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in _ORDER_FIELDS]
        parts["order_fields"] = {
            name: _crc("\x1f".join(column))
            for name, column in zip(_ORDER_FIELDS, columns, strict=True)
        }
    else:
        parts["orders"] = None
    return parts


def _walk(document: Mapping[str, Any], *, locate: bool) -> tuple[str, dict[str, Any]]:
    """The SHA-256 of `canonical_json(document without integrity)` and, when `locate`, the
    part checksums. Built piece by piece so each value is serialised once; equal by
    construction to hashing `canonical_json` of the whole (a unit test holds it to that)."""
    digest = hashlib.sha256()
    fields: dict[str, str] = {}
    accounts: list[Any] | None = None
    digest.update(b"{")
    keys = sorted(k for k in document if k != INTEGRITY_KEY)
    for n, key in enumerate(keys):
        value = document[key]
        digest.update((("," if n else "") + canonical_json(key) + ":").encode())
        if (
            key == "accounts"
            and isinstance(value, list)
            and all(isinstance(a, Mapping) for a in value)
        ):
            digest.update(b"[")
            accounts = []
            for i, account in enumerate(value):
                if i:
                    digest.update(b",")
                accounts.append(_account_parts(account, digest, locate))
            digest.update(b"]")
        else:
            piece = canonical_json(value)
            digest.update(piece.encode())
            if locate:
                fields[key] = _crc(piece)
    digest.update(b"}")
    return digest.hexdigest(), {"fields": fields, "accounts": accounts}


def content_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a plan document without its `integrity`."""
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    return hashlib.sha256(_canonical_bytes(body)).hexdigest()


def seal(document: Mapping[str, Any]) -> dict[str, Any]:
    """The `integrity` member for a plan document: its digest and the part checksums."""
    digest, parts = _walk(document, locate=True)
    return {
        "algorithm": DIGEST_ALGORITHM,
        "digest": digest,
        "canonical": "JSON of the document without 'integrity': sorted keys, no whitespace",
        "locate": parts,
    }


def verify(document: Mapping[str, Any]) -> None:
    """Raise `PlanIntegrityError` unless the document matches the digest it carries; the
    error names each part found edited (JSON path, and the order's leg, account, symbol)."""
    seal_ = document.get(INTEGRITY_KEY)
    if not isinstance(seal_, Mapping) or not isinstance(seal_.get("digest"), str):
        raise PlanIntegrityError(
            [
                "the plan file carries no integrity digest, so edits cannot be ruled out; "
                "make a new plan with `reconcile plan --out FILE`"
            ]
        )
    if seal_.get("algorithm") != DIGEST_ALGORITHM:
        raise PlanIntegrityError(
            [f"unknown digest algorithm {seal_.get('algorithm')!r} (expected sha256)"]
        )
    if content_digest(document) == seal_["digest"]:
        return
    try:
        where = _locate(document, seal_.get("locate"))
    except Exception:  # the seal itself is malformed: the digest mismatch stands on its own
        where = []
    if not where:
        where = [
            "no part differs from its recorded checksum: the digest or the integrity "
            "member itself was edited"
        ]
    if len(where) > _MAX_PROBLEMS:
        where = [*where[:_MAX_PROBLEMS], f"... and {len(where) - _MAX_PROBLEMS} more"]
    raise PlanIntegrityError(
        ["content does not match its SHA-256 digest: the plan was edited after it was written"]
        + [f"edited: {w}" for w in where]
    )


def _label(order: Any) -> str:
    if not isinstance(order, Mapping):
        return "not an order"
    return (
        f"leg {order.get('leg')}, {order.get('account')} {order.get('side')} {order.get('symbol')}"
    )


def _locate(document: Mapping[str, Any], recorded: Any) -> list[str]:
    """Where a document differs from the part checksums recorded when it was written."""
    if not isinstance(recorded, Mapping):
        return []
    _, now = _walk(document, locate=True)
    found: list[str] = []
    then_fields = recorded.get("fields") or {}
    for key in sorted(set(then_fields) | set(now["fields"])):
        if key not in now["fields"]:
            found.append(f"{key} (removed)")
        elif key not in then_fields:
            found.append(f"{key} (added)")
        elif now["fields"][key] != then_fields[key]:
            found += _derived_edits(document, key) if key in _DERIVED else [key]
    then_accounts, now_accounts = recorded.get("accounts"), now["accounts"]
    if not isinstance(then_accounts, list) or now_accounts is None:
        return [*found, "accounts"] if then_accounts != now_accounts else found
    if len(then_accounts) != len(now_accounts):
        found.append(
            f"accounts ({len(now_accounts)} in the file, {len(then_accounts)} when written)"
        )
    for i, (then, now_) in enumerate(zip(then_accounts, now_accounts, strict=False)):
        found += _account_edits(document["accounts"][i], i, then, now_)
    return found


def _account_edits(account: Mapping[str, Any], i: int, then: Any, now: Mapping) -> list[str]:
    name = account.get("account")
    where = f"accounts[{i}]"
    found = [
        f"{where}.{key} ({name})"
        for key in sorted(set(then.get("fields", {})) | set(now["fields"]))
        if then.get("fields", {}).get(key) != now["fields"].get(key)
    ]
    orders = account.get("orders")
    if now["orders"] is None or not isinstance(then.get("orders"), list):
        return (
            [*found, f"{where}.orders ({name})"] if now["orders"] != then.get("orders") else found
        )
    for j, order in enumerate(orders):
        extra = sorted(set(order) - set(_ORDER_FIELDS))
        if extra:
            found.append(
                f"{where}.orders[{j}] ({_label(order)}): field(s) {', '.join(extra)} added"
            )
    columns = [
        name_
        for name_ in _ORDER_FIELDS
        if then.get("order_fields", {}).get(name_) != now["order_fields"].get(name_)
    ]
    matcher = difflib.SequenceMatcher(None, then["orders"], now["orders"], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            edited = list(range(j1, j2))
            for j in edited:
                found.append(_order_edit(where, j, orders[j], columns, single=len(edited) == 1))
            continue
        for j in range(j1, j2):
            found.append(f"{where}.orders[{j}] ({_label(orders[j])}): added or edited")
        if i2 > i1:
            span = f"orders[{i1}]" if i2 - i1 == 1 else f"orders[{i1}]..orders[{i2 - 1}]"
            found.append(f"{where}.orders ({name}): {i2 - i1} order(s) removed (were {span})")
    return found


def _order_edit(where: str, j: int, order: Any, columns: list[str], *, single: bool) -> str:
    path = f"{where}.orders[{j}]"
    if single and columns:
        # The only edited order of its account: the changed columns are its fields.
        return ", ".join(f"{path}.{c}" for c in columns) + f" ({_label(order)})"
    if columns:
        return f"{path} ({_label(order)}): one of {', '.join(columns)}"
    return f"{path} ({_label(order)})"


def _derived_edits(document: Mapping[str, Any], key: str) -> list[str]:
    """Name what differs in an edited derived copy (`orders`, `decisions`, `totals`)."""
    note = f"{key} (a copy derived from accounts[]; edit neither)"
    accounts = document.get("accounts")
    flat = document.get(key)
    if key == "totals" or not isinstance(accounts, list) or not isinstance(flat, list):
        return [note]
    sources = [
        (f"accounts[{i}].{key}[{j}]", item)
        for i, a in enumerate(accounts)
        if isinstance(a, Mapping) and isinstance(a.get(key), list)
        for j, item in enumerate(a[key])
    ]
    found = []
    for k, (item, (path, source)) in enumerate(zip(flat, sources, strict=False)):
        if item == source:
            continue
        if isinstance(item, Mapping) and isinstance(source, Mapping):
            names = sorted(n for n in set(item) | set(source) if item.get(n) != source.get(n))
            found += [f"{key}[{k}].{n} (differs from {path}; {_label(source)})" for n in names]
        else:
            found.append(f"{key}[{k}] (differs from {path})")
    if len(flat) != len(sources):
        found.append(f"{key} ({len(flat)} entries, accounts[].{key} has {len(sources)})")
    return found or [note]


# ---------------------------------------------------------------- build and cross-check

_NUMBER_FIELDS = ("quantity", "ttl_seconds", "arrival_price", "est_notional", "est_commission")
_TEXT_FIELDS = (
    "account",
    "key",
    "symbol",
    "sec_type",
    "exchange",
    "primary_exchange",
    "currency",
    "order_type",
    "time_in_force",
    "reason",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _order(data: Any, path: str) -> PlannedOrder:
    """One order, its fields checked for type: apply sends exactly these values."""
    if not isinstance(data, Mapping):
        raise PlanFileError(f"{path} is not an object")
    missing = [n for n in _ORDER_FIELDS if n not in data]
    if missing:
        raise PlanFileError(f"{path} has no {', '.join(missing)}")
    bad = [n for n in _NUMBER_FIELDS if not _is_number(data[n])]
    bad += [n for n in _TEXT_FIELDS if not isinstance(data[n], str)]
    if not (isinstance(data["leg"], int) and not isinstance(data["leg"], bool)) or data["leg"] < 1:
        bad.append("leg")
    if not (isinstance(data["con_id"], int) and not isinstance(data["con_id"], bool)):
        bad.append("con_id")
    if data["side"] not in ("BUY", "SELL"):
        bad.append("side")
    if data["limit_price"] is not None and not _is_number(data["limit_price"]):
        bad.append("limit_price")
    if not isinstance(data["outside_rth"], bool):
        bad.append("outside_rth")
    if _is_number(data["quantity"]) and data["quantity"] <= 0:
        bad.append("quantity")
    if bad:
        shown = ", ".join(f"{n}={data[n]!r}" for n in bad)
        raise PlanFileError(f"{path} has invalid field(s): {shown}")
    return make(PlannedOrder, **{n: data[n] for n in _ORDER_FIELDS})


def _time(data: Mapping[str, Any], key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{key} is missing or not an ISO time: {exc}") from exc
    if value.tzinfo is None:
        raise PlanFileError(f"{key} {data[key]!r} has no time zone (plans are in UTC)")
    return value


def _build(data: Mapping[str, Any]) -> Plan:
    accounts = data.get("accounts")
    if not isinstance(accounts, list):
        raise PlanFileError("accounts is missing or not a list")
    built = []
    for i, a in enumerate(accounts):
        path = f"accounts[{i}]"
        try:
            built.append(
                AccountPlan(
                    account=a["account"],
                    portfolio=a["portfolio"],
                    risk_policy=a["risk_policy"],
                    base_currency=a["base_currency"],
                    net_liquidation=a["net_liquidation"],
                    capital=a["capital"],
                    drift=tuple(make(DriftRow, **r) for r in a["drift"]),
                    orders=tuple(
                        _order(o, f"{path}.orders[{j}]") for j, o in enumerate(a["orders"])
                    ),
                    decisions=tuple(make(RiskDecision, **d) for d in a["decisions"]),
                    notes=tuple(a.get("notes", ())),
                    cash_for_buys=a.get("cash_for_buys"),
                )
            )
        except PlanFileError:
            raise
        except KeyError as exc:
            raise PlanFileError(f"{path} has no {exc}") from exc
        except (TypeError, AttributeError) as exc:
            raise PlanFileError(f"{path} is malformed: {exc}") from exc
    try:
        return Plan(
            plan_id=data["plan_id"],
            created_at=_time(data, "created_at"),
            desired_hash=data["desired_hash"],
            git_commit=data.get("git_commit"),
            git_dirty=data.get("git_dirty"),
            actual_fingerprint=data["actual_fingerprint"],
            fingerprint_parts=data.get("fingerprint_parts", {}),
            snapshot_time=_time(data, "snapshot_time"),
            quotes=data.get("quotes", {}),
            nav=data.get("nav", {}),
            accounts=tuple(built),
            desired_snapshot=data.get("desired_snapshot", {}),
            version=data["version"],
            warnings=_warnings(data.get("warnings", [])),
            desired_changes=_changes_dict(data.get("desired_changes") or {}),
        )
    except KeyError as exc:
        raise PlanFileError(f"the plan has no {exc}") from exc


def with_desired_changes(plan: Plan, against: str, changes: Sequence[str]) -> Plan:
    """The same plan also saying what the desired state changed compared with `against`."""
    return dataclasses.replace(
        plan, desired_changes={"against": against, "changes": list(changes)}
    )


def _changes_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PlanFileError(f"desired_changes must be an object, not {value!r}")
    return {k: list(v) if isinstance(v, list | tuple) else v for k, v in value.items()}


def _warnings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise PlanFileError(f"warnings must be a list of strings, not {value!r}")
    return tuple(value)


def _check_derived(data: Mapping[str, Any], plan: Plan) -> None:
    """The derived copies and cross-references must agree with `accounts[].orders`, even
    under a valid digest (whoever edits a file can recompute a digest)."""
    problems = []
    rebuilt = _derived(data["accounts"])
    for key in ("orders", "decisions"):
        if data.get(key) != rebuilt[key]:
            problems += [
                f"{p}: the top-level list must equal accounts[].{key}"
                for p in _derived_edits(data, key)
            ]
    if data.get("totals") != plan.totals:
        problems.append(f"totals {data.get('totals')!r} do not match the orders ({plan.totals!r})")
    seen: dict[int, str] = {}
    for i, account in enumerate(plan.accounts):
        for j, order in enumerate(account.orders):
            path = f"accounts[{i}].orders[{j}]"
            if order.account != account.account:
                problems.append(
                    f"{path}.account is {order.account} but the order is listed under account "
                    f"{account.account}"
                )
            if order.leg in seen:
                problems.append(f"{path}.leg {order.leg} is also the leg of {seen[order.leg]}")
            seen.setdefault(order.leg, path)
    if problems:
        raise PlanIntegrityError(problems)


def without_instruments(
    plan: Plan, skipped: Mapping[tuple[str, int], Mapping[str, Any]], code: str = "LEDGER_BREAK"
) -> Plan:
    """The same plan with no orders for the (account, conId) pairs in `skipped`.

    Each dropped order becomes a denial with `code` and the given detail, so the report says
    why it was not sent. Used for instruments whose ledger and broker disagree.
    """
    if not skipped:
        return plan
    accounts = []
    for a in plan.accounts:
        kept = tuple(o for o in a.orders if (o.account, o.con_id) not in skipped)
        dropped = [o for o in a.orders if (o.account, o.con_id) in skipped]
        decisions = a.decisions + tuple(
            RiskDecision(
                code=code,
                action="deny",
                account=o.account,
                key=o.key,
                side=o.side,
                requested_quantity=o.quantity,
                allowed_quantity=0.0,
                detail=dict(skipped[(o.account, o.con_id)]),
            )
            for o in dropped
        )
        accounts.append(dataclasses.replace(a, orders=kept, decisions=decisions))
    return dataclasses.replace(plan, accounts=tuple(accounts))
