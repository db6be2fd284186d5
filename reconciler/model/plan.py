"""The plan: a value and a file (Terraform style).

Responsible for the plan artifact's types (`Plan`, `PlannedOrder`, `RiskDecision`,
`DriftRow`, `AccountPlan`), its versioned JSON form (`to_dict`/`from_dict`, `dumps`/`loads`),
the file's integrity seal (a SHA-256 digest over the canonical document, checked by the
reader, which names what was edited) and the deterministic `order_ref` of a leg. Must not
compute plans (that is `planner` and `risk`), talk to a broker, read files or print.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import difflib
import functools
import hashlib
import math
import operator
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from reconciler.util.collector import collector_paused

_T = TypeVar("_T")

# 2: the file carries an `integrity` seal (SHA-256 digest); version 1 files are refused.
# 3: the canonical JSON the digest is taken over is orjson's (UTF-8, shortest floats), ~10x
#    faster to seal and verify than the standard library's; version 2 files are refused.
# 4: compact: an account's drift, orders and decisions are tables (columns once, rows of
#    values, no `account` per row); no top-level copies of the orders and decisions; the
#    desired snapshot's targets are tables, written once for accounts that share them; the
#    seal's checksums cover each table row and column. Version 3 files are refused. About
#    a quarter of the size, and several times faster to write and read (issue 12).
PLAN_FORMAT_VERSION = 4

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
# Format version 4. The document (`to_dict`; the store keeps this same form, unsealed):
# - top level: `format`, `version`, the plan's scalar members, `fingerprint_parts`, `quotes`,
#   `nav`, `accounts`, `desired_snapshot`, `warnings`, `desired_changes` and `totals`.
# - each account: its own members (`account`, `portfolio`, ..., `notes`, `cash_for_buys`) and
#   three tables, `drift`, `orders` and `decisions`: `{"columns": [field names], "rows":
#   [[values], ...]}`, one row per `DriftRow`, `PlannedOrder`, `RiskDecision`, without the
#   `account` field (every row is its account's; the reader fills it in). A decision's
#   `detail` is a JSON object in its column. The reader requires exactly the known columns
#   (in any order) and checks each order's values for type.
# - `desired_snapshot`: `Plan.desired_snapshot`, except that each portfolio's `targets`
#   mapping (key -> {instrument, weight, quantity}) is written as a table whose columns are
#   `key`, `weight`, `quantity` and `instrument.<field>` for each instrument field, or, when
#   an account earlier in the snapshot has byte-for-byte the same targets (a model portfolio
#   shared by many accounts), as `{"same_as": "<that account>"}`, naming the first account
#   holding them, whose targets are written out (references never chain, and need no member
#   order). Targets of another shape are kept as `{"value": ...}`. The reader rebuilds the
#   same mapping (accounts that share targets share one mapping in memory).
# - there are no top-level `orders` or `decisions` (versions 1-3 carried them as derived
#   copies): `Plan.orders` / `Plan.decisions` derive them, and `document_orders` /
#   `document_decisions` do for a stored document of any version. `totals` is derived from
#   the orders and checked by the reader.
# The file is the document plus an `integrity` member that seals it:
# - `digest`: SHA-256 (hex) of the canonical JSON of the document without `integrity`
#   (orjson's: keys sorted, no whitespace, UTF-8, shortest floats; `canonical_json`). The
#   digest is over the JSON values, not the bytes: re-indenting or reordering keys keeps
#   it, any changed value (a number respelled, 20.0 as 20, included) breaks it.
# - `locate`: small CRC-32 checksums of the document's parts: each top-level member, each
#   account's members, each table's `columns` list and rows (the low 24 bits of each row's
#   CRC-32, as 4 base64 characters per row packed in one string) and each order column. They decide
#   nothing; they only let the reader say *where* a document that fails its digest was
#   edited (an order by leg and field, a drift or decision row by its key).
# Large plans (5,000 rows and more) are written compactly as the canonical bytes themselves
# (serialised once) with `integrity` appended, and a file read back byte for byte as written
# is verified from its bytes (`sealed_as_written`); small ones are written indented, in
# document order, for review in a PR.
# A digest is not a signature: whoever can write the file can recompute it. It catches an
# edited plan; apply's risk re-check (decide.risk.recheck_plan) bounds a forged one.

PLAN_FORMAT = "ib-reconciler/plan"
INTEGRITY_KEY = "integrity"
DIGEST_ALGORITHM = "sha256"
_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(PlannedOrder))
# Each table's columns: the row type's fields but `account`.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "drift": tuple(f.name for f in dataclasses.fields(DriftRow) if f.name != "account"),
    "orders": tuple(n for n in _ORDER_FIELDS if n != "account"),
    "decisions": tuple(f.name for f in dataclasses.fields(RiskDecision) if f.name != "account"),
}
_ROW_NOUN = {"drift": "drift row(s)", "orders": "order(s)", "decisions": "decision(s)"}
_TARGET_COLUMNS = ("key", "weight", "quantity")
_INSTRUMENT_PREFIX = "instrument."
_LEGACY_COPIES = ("orders", "decisions")
_MAX_PROBLEMS = 20
_SMALL_PLAN_ROWS = 5000


class PlanFileError(ValueError):
    """Not a plan this reconciler can read: not JSON (or truncated), not a plan, another
    format version, a missing or mistyped field. The CLI exits 1."""


class PlanIntegrityError(ValueError):
    """The plan is not the one `reconcile plan` wrote: no digest, a digest that does not
    match, or derived values that disagree with the orders. `problems` say where (JSON
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


_ACCOUNT_MEMBERS = tuple(
    f.name for f in dataclasses.fields(AccountPlan) if f.name not in (*_COLUMNS, "notes")
)
_account_members = operator.attrgetter(*_ACCOUNT_MEMBERS)
_row_values = {
    "drift": operator.attrgetter(*_COLUMNS["drift"]),
    "orders": operator.attrgetter(*_COLUMNS["orders"]),
    "decisions": operator.attrgetter(*_COLUMNS["decisions"]),
}
_DETAIL = _COLUMNS["decisions"].index("detail")


def _table(kind: str, items: Sequence[Any], *, as_lists: bool) -> dict[str, list[Any]]:
    """A table of `items`; its rows are lists, or, when only serialised (`as_lists` false),
    the tuples the getter returns (the same JSON, without a copy of each row)."""
    rows: list[Any] = list(map(_row_values[kind], items))
    if kind == "decisions" and not all(type(d.detail) is dict for d in items):
        rows = [[*row[:_DETAIL], dict(row[_DETAIL]), *row[_DETAIL + 1 :]] for row in rows]
    elif as_lists:
        rows = list(map(list, rows))
    return {"columns": list(_COLUMNS[kind]), "rows": rows}


def to_dict(plan: Plan) -> dict[str, Any]:
    """The plan document without its seal (the store keeps this form)."""
    return _document(plan, as_lists=True)


def _document(plan: Plan, *, as_lists: bool) -> dict[str, Any]:
    with collector_paused():
        accounts = []
        for a in plan.accounts:
            body = dict(zip(_ACCOUNT_MEMBERS, _account_members(a), strict=True))
            body["drift"] = _table("drift", a.drift, as_lists=as_lists)
            body["orders"] = _table("orders", a.orders, as_lists=as_lists)
            body["decisions"] = _table("decisions", a.decisions, as_lists=as_lists)
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
            desired_snapshot=_compact_snapshot(plan.desired_snapshot),
            warnings=list(plan.warnings),
            desired_changes=_changes_dict(plan.desired_changes),
            totals=plan.totals,
        )
        body["version"] = PLAN_FORMAT_VERSION  # the shape written, whatever the value says
        return {"format": PLAN_FORMAT, **body}


def to_document(plan: Plan) -> dict[str, Any]:
    """The plan file's content: the document and its `integrity` seal."""
    document = to_dict(plan)
    document[INTEGRITY_KEY] = seal(document)
    return document


def dumps(plan: Plan) -> str:
    """The plan file's text: indented for review in a PR; very large plans compactly (the
    canonical bytes the digest is taken over, with the seal appended: serialised once)."""
    with collector_paused():
        document = _document(plan, as_lists=False)
        canonical, parts = _canonical(document, locate=True)
        integrity = _integrity(hashlib.sha256(canonical).hexdigest(), parts)
        if sum(len(a.orders) + len(a.drift) for a in plan.accounts) < _SMALL_PLAN_ROWS:
            document[INTEGRITY_KEY] = integrity
            option = orjson.OPT_INDENT_2 | _CANONICAL & ~orjson.OPT_SORT_KEYS
            return orjson.dumps(document, option=option, default=str).decode()
        seal_ = [b",", _dumps(INTEGRITY_KEY), b":", _dumps(integrity), b"}"]
        return b"".join([memoryview(canonical)[:-1], *seal_]).decode()


def loads(text: str | bytes) -> Plan:
    """Parse, verify and build a plan file; `PlanFileError` or `PlanIntegrityError`."""
    with collector_paused():
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise PlanFileError(f"not valid JSON (truncated or not a plan file?): {exc}") from exc
        except RecursionError as exc:  # pragma: no cover - orjson reports depth as decode error
            raise PlanFileError("not a plan file: JSON nested too deeply") from exc
        return _from_dict(data, sealed_as_written(text, data))


def sealed_as_written(text: str | bytes, data: Any) -> bool:
    """Whether `text` is byte for byte a large plan file as `dumps` writes it (the canonical
    bytes with `integrity` appended) and those bytes match its digest: then the document
    needs no second serialisation to be verified. False says only "check it the long way"."""
    seal_ = data.get(INTEGRITY_KEY) if isinstance(data, Mapping) else None
    if not isinstance(seal_, Mapping) or seal_.get("algorithm") != DIGEST_ALGORITHM:
        return False
    raw = (text.encode() if isinstance(text, str) else bytes(text)).rstrip()
    suffix = b"," + _dumps(INTEGRITY_KEY) + b":" + _dumps(seal_) + b"}"
    if not raw.endswith(suffix):
        return False
    digest = hashlib.sha256(memoryview(raw)[: -len(suffix)])
    digest.update(b"}")
    # SHA-256 matching means these are the very bytes the digest was taken over when the
    # plan was written, which were canonical: the parsed document is the sealed one.
    return digest.hexdigest() == seal_.get("digest")


def from_dict(data: Any) -> Plan:
    """A sealed plan document as a `Plan`, after checking its format, version, digest and
    derived values, and the types of every order field."""
    return _from_dict(data, verified=False)


def _from_dict(data: Any, verified: bool) -> Plan:
    if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
        raise PlanFileError("not an ib-reconciler plan file (missing format marker)")
    if data.get("version") != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"plan format version {data.get('version')!r} is not supported "
            f"(this reconciler reads version {PLAN_FORMAT_VERSION}); make a new plan with "
            "`reconcile plan --out FILE`"
        )
    with collector_paused():
        if not verified:
            verify(data)
        plan = _build(data)
        _check_derived(data, plan)
    return plan


# ---------------------------------------------------------------- stored documents, any version


def document_rows(account: Any, kind: str) -> list[dict[str, Any]]:
    """One account's `drift`, `orders` or `decisions` of a plan document as dicts (with
    `account`), for display: a version 4 table or the list of objects of versions 1-3.
    Lenient: what cannot be read is left out, never an exception (old store rows)."""
    if not isinstance(account, Mapping):
        return []
    value, name = account.get(kind), account.get("account")
    if isinstance(value, list):
        return [dict(r) for r in value if isinstance(r, Mapping)]
    if not isinstance(value, Mapping):
        return []
    columns, rows = value.get("columns"), value.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        return []
    return [
        {"account": name, **dict(zip(columns, row, strict=False))}
        for row in rows
        if isinstance(row, list) and len(row) == len(columns)
    ]


def document_orders(document: Any) -> list[dict[str, Any]]:
    """Every order of a plan document of any version, account by account, as dicts."""
    return _document_items(document, "orders")


def document_decisions(document: Any) -> list[dict[str, Any]]:
    """Every risk decision of a plan document of any version, account by account."""
    return _document_items(document, "decisions")


def _document_items(document: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    accounts = document.get("accounts")
    if isinstance(accounts, list):
        return [row for a in accounts for row in document_rows(a, kind)]
    legacy = document.get(kind)  # no accounts: the flat copy of an older version, if any
    return [dict(r) for r in legacy if isinstance(r, Mapping)] if isinstance(legacy, list) else []


# ---------------------------------------------------------------- desired snapshot in the file


def _compact_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """`desired_snapshot` as written: each portfolio's targets as a table, or a reference to
    the first account with the same targets."""
    compact: dict[str, Any] = {}
    holders: dict[bytes, str] = {}
    for account, entry in snapshot.items():
        portfolio = entry.get("portfolio") if isinstance(entry, Mapping) else None
        if not isinstance(portfolio, Mapping) or "targets" not in portfolio:
            compact[account] = entry
            continue
        targets = portfolio["targets"]
        written = _dumps(targets)
        holder = holders.get(written)
        if holder is not None:
            table: dict[str, Any] = {"same_as": holder}
        else:
            holders[written] = account
            table = _targets_table(targets)
        compact[account] = {**entry, "portfolio": {**portfolio, "targets": table}}
    return compact


def _targets_table(targets: Any) -> dict[str, Any]:
    if not isinstance(targets, Mapping):
        return {"value": targets}
    values = list(targets.values())
    first = values[0] if values else {"instrument": {}}
    fields = list(first.get("instrument") or {}) if isinstance(first, Mapping) else None
    shaped = fields is not None and all(
        isinstance(v, Mapping)
        and len(v) == 3
        and isinstance(v.get("instrument"), Mapping)
        and "weight" in v
        and "quantity" in v
        and list(v["instrument"]) == fields
        for v in values
    )
    if not shaped or not all(isinstance(k, str) for k in targets):
        return {"value": dict(targets)}
    return {
        "columns": [*_TARGET_COLUMNS, *(_INSTRUMENT_PREFIX + f for f in fields or ())],
        "rows": [
            [key, v["weight"], v["quantity"], *v["instrument"].values()]
            for key, v in targets.items()
        ],
    }


def _expand_snapshot(value: Any) -> dict[str, Any]:
    """`Plan.desired_snapshot` from its written form (the inverse of `_compact_snapshot`).
    Tables first, then the references to them: an object's member order carries no meaning
    in JSON, so a reference may come before the account it names."""
    if not isinstance(value, Mapping):
        raise PlanFileError("desired_snapshot is not an object")
    tables: dict[str, Any] = {}
    for account, entry in value.items():
        written = _written_targets(entry)
        if written is not None and not _is_reference(written):
            tables[account] = _targets_of(written, f"desired_snapshot.{account}.portfolio.targets")
    expanded: dict[str, Any] = {}
    for account, entry in value.items():
        written = _written_targets(entry)
        if written is None:
            expanded[account] = entry
            continue
        if _is_reference(written):
            holder = written["same_as"]
            if not isinstance(holder, str) or holder not in tables:
                raise PlanFileError(
                    f"desired_snapshot.{account}.portfolio.targets.same_as {holder!r} is not "
                    "an account whose targets are written out"
                )
            targets = tables[holder]
        else:
            targets = tables[account]
        expanded[account] = {**entry, "portfolio": {**entry["portfolio"], "targets": targets}}
    return expanded


def _written_targets(entry: Any) -> Any:
    """A snapshot entry's written targets; None when its portfolio has none."""
    portfolio = entry.get("portfolio") if isinstance(entry, Mapping) else None
    if not isinstance(portfolio, Mapping) or "targets" not in portfolio:
        return None
    return portfolio["targets"]


def _is_reference(written: Any) -> bool:
    return isinstance(written, Mapping) and set(written) == {"same_as"}


def _targets_of(written: Any, path: str) -> Any:
    if isinstance(written, Mapping) and set(written) == {"value"}:
        return written["value"]
    if not isinstance(written, Mapping) or set(written) != {"columns", "rows"}:
        raise PlanFileError(f"{path} is not a targets table (columns and rows), same_as or value")
    columns, rows = written["columns"], written["rows"]
    if (
        not isinstance(columns, list)
        or tuple(columns[:3]) != _TARGET_COLUMNS
        or not all(isinstance(c, str) and c.startswith(_INSTRUMENT_PREFIX) for c in columns[3:])
    ):
        raise PlanFileError(
            f"{path}.columns must be key, weight, quantity and instrument.<field> columns, "
            f"not {columns!r}"
        )
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == len(columns) and isinstance(r[0], str) for r in rows
    ):
        raise PlanFileError(f"{path}.rows must be rows of {len(columns)} values, keys first")
    names = [c[len(_INSTRUMENT_PREFIX) :] for c in columns[3:]]
    return {
        row[0]: {
            "instrument": dict(zip(names, row[3:], strict=True)),
            "weight": row[1],
            "quantity": row[2],
        }
        for row in rows
    }


# ---------------------------------------------------------------- seal and verify


def canonical_json(value: Any) -> str:
    """The canonical JSON text the digest is taken over: orjson's, with sorted keys and no
    whitespace (UTF-8; floats in their shortest form; other values as `str`)."""
    return _dumps(value).decode()


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_CANONICAL, default=str)



def _crc(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


def _crc_of(pieces: Sequence[bytes]) -> str:
    """`_crc` of the pieces joined, without joining them."""
    value = 0
    for piece in pieces:
        value = zlib.crc32(piece, value)
    return f"{value:08x}"


def _is_table(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 2
        and "columns" in value
        and isinstance(value.get("rows"), list)
    )


def _table_canonical(kind: str, table: Mapping[str, Any], locate: bool) -> tuple[list[bytes], Any]:
    """A table's canonical JSON, in pieces (`columns` sorts before `rows`), and when
    `locate` its row checksums and, for the orders, its column checksums (what names the
    edited field of an order; kept to the orders as they cost a second pass over a table)."""
    rows = table["rows"]
    written, header = _dumps(rows), _dumps(table["columns"])
    pieces = [b'{"columns":', header, b',"rows":', written, b"}"]
    if not locate:
        return pieces, None
    part: dict[str, Any] = {"header": _crc(header), "rows": _packed_crcs(_items(written, rows))}
    if kind == "orders":
        part["columns"] = _column_crcs(table["columns"], rows)
    return pieces, part


def _items(written: bytes, values: Sequence[Any]) -> list[bytes]:
    """Each array of `values`, an array of arrays, as `written` (orjson's canonical bytes),
    without its brackets: `written` cut at `],[` (one serialisation for the whole table
    rather than one per row, ~20x faster), or one at a time when a value holds that text."""
    if not values:
        return []
    items = written[2:-2].split(b"],[")
    if len(items) == len(values) and written[:2] == b"[[" and written[-2:] == b"]]":
        return items
    return [_dumps(v)[1:-1] for v in values]


def _packed_crcs(rows: list[bytes]) -> str:
    """Each row's CRC-32, its low 24 bits as 4 base64 characters, in one string: a few
    bytes per row (the rows are most of a large plan), still all but never equal by chance
    for an edited row."""
    crcs = bytearray(struct.pack(f">{len(rows)}I", *map(zlib.crc32, rows)))
    del crcs[::4]  # each CRC's high byte
    return base64.b64encode(crcs).decode()


def _column_crcs(columns: Any, rows: list[Any]) -> dict[str, str]:
    if not isinstance(columns, list) or len(set(map(str, columns))) != len(columns):
        return {}
    try:
        transposed = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    except (TypeError, ValueError):  # rows of other widths: no column can be named
        return {}
    if len(transposed) != len(columns) or not columns:
        return {}
    cells = _items(_dumps(transposed), transposed) if rows else [b""] * len(columns)
    return {str(name): _crc(column) for name, column in zip(columns, cells, strict=True)}


def _account_canonical(account: Mapping[str, Any], locate: bool) -> tuple[list[bytes], Any]:
    fields: dict[str, str] = {}
    tables: dict[str, Any] = {}
    pieces = [b"{"]
    for n, key in enumerate(sorted(account)):
        value = account[key]
        if key in _COLUMNS and _is_table(value):
            piece, tables[key] = _table_canonical(key, value, locate)
        else:
            piece = [_dumps(value)]
        if locate:
            fields[key] = _crc_of(piece)
        pieces += [b"," if n else b"", _dumps(key), b":", *piece]
    pieces.append(b"}")
    return pieces, ({"fields": fields, "tables": tables} if locate else None)


def _canonical(document: Mapping[str, Any], *, locate: bool) -> tuple[bytes, dict[str, Any]]:
    """`canonical_json(document without integrity)` as bytes and, when `locate`, the part
    checksums. Built piece by piece (joined once) so each value is serialised once; equal by
    construction to the canonical JSON of the whole (a unit test holds it to that)."""
    fields: dict[str, str] = {}
    accounts: list[Any] | None = None
    pieces = [b"{"]
    for n, key in enumerate(sorted(k for k in document if k != INTEGRITY_KEY)):
        value = document[key]
        pieces += [b"," if n else b"", _dumps(key), b":"]
        if (
            key == "accounts"
            and isinstance(value, list)
            and all(isinstance(a, Mapping) for a in value)
        ):
            accounts = []
            pieces.append(b"[")
            for i, account in enumerate(value):
                body, part = _account_canonical(account, locate)
                pieces += [b"," if i else b"", *body]
                accounts.append(part)
            pieces.append(b"]")
        else:
            piece = _dumps(value)
            pieces.append(piece)
            if locate:
                fields[key] = _crc(piece)
    pieces.append(b"}")
    return b"".join(pieces), {"fields": fields, "accounts": accounts}


def content_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a plan document without its `integrity`."""
    body = {k: v for k, v in document.items() if k != INTEGRITY_KEY}
    return hashlib.sha256(_dumps(body)).hexdigest()


def _integrity(digest: str, parts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "algorithm": DIGEST_ALGORITHM,
        "digest": digest,
        "canonical": "JSON of the document without 'integrity': sorted keys, no whitespace",
        "locate": parts,
    }


def seal(document: Mapping[str, Any]) -> dict[str, Any]:
    """The `integrity` member for a plan document: its digest and the part checksums."""
    canonical, parts = _canonical(document, locate=True)
    return _integrity(hashlib.sha256(canonical).hexdigest(), parts)


def verify(document: Mapping[str, Any]) -> None:
    """Raise `PlanIntegrityError` unless the document matches the digest it carries; the
    error names each part found edited (JSON path, and the row's leg, account, symbol)."""
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


def _locate(document: Mapping[str, Any], recorded: Any) -> list[str]:
    """Where a document differs from the part checksums recorded when it was written."""
    if not isinstance(recorded, Mapping):
        return []
    _, now = _canonical(document, locate=True)
    found: list[str] = []
    then_fields = recorded.get("fields") or {}
    for key in sorted(set(then_fields) | set(now["fields"])):
        if key not in now["fields"]:
            found.append(f"{key} (removed)")
        elif key not in then_fields:
            found.append(f"{key} (added)")
        elif now["fields"][key] != then_fields[key]:
            found.append(
                "totals (derived from the orders; edit neither)" if key == "totals" else key
            )
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
    then_fields, now_fields = then.get("fields") or {}, now["fields"]
    then_tables, now_tables = then.get("tables") or {}, now["tables"]
    found = []
    for key in sorted(set(then_fields) | set(now_fields)):
        if then_fields.get(key) == now_fields.get(key):
            continue
        if key not in now_fields:
            found.append(f"{where}.{key} ({name}; removed)")
        elif key not in then_fields:
            found.append(f"{where}.{key} ({name}; added)")
        elif isinstance(then_tables.get(key), Mapping) and key in now_tables:
            edits = _table_edits(f"{where}.{key}", account, key, then_tables[key], now_tables[key])
            found += edits or [f"{where}.{key} ({name})"]
        else:
            found.append(f"{where}.{key} ({name})")
    return found


def _row_label(account: Mapping[str, Any], kind: str, j: int) -> str:
    """What a row is, in the file's values: an order's leg, account, side and symbol."""
    table = account[kind]
    columns, rows = table.get("columns"), table["rows"]
    row = rows[j] if j < len(rows) else None
    if not isinstance(columns, list) or not isinstance(row, list):
        return "not a row"
    cell = dict(zip(columns, row, strict=False))
    name = account.get("account")
    if kind == "orders":
        return f"leg {cell.get('leg')}, {name} {cell.get('side')} {cell.get('symbol')}"
    if kind == "decisions":
        return f"{name} {cell.get('code')} {cell.get('side')} {cell.get('key')}"
    return f"{name} {cell.get('key')}"


def _chunks(packed: str) -> list[str]:
    return [packed[k : k + 4] for k in range(0, len(packed), 4)]


def _table_edits(
    path: str, account: Mapping[str, Any], kind: str, then: Mapping, now: Mapping
) -> list[str]:
    """Which rows (and, for edited rows, which columns) of a table differ from when it was
    written."""
    found = []
    if then.get("header") != now["header"]:
        names = account[kind].get("columns")
        names = [str(n) for n in names] if isinstance(names, list) else []
        said = [
            f"{label} {', '.join(listed)}"
            for label, listed in (
                ("without", [c for c in _COLUMNS[kind] if c not in names]),
                ("with unknown", [c for c in names if c not in _COLUMNS[kind]]),
            )
            if listed
        ]
        return [f"{path}.columns ({'; '.join(said) or 'reordered or repeated'})"]
    then_columns, now_columns = then.get("columns") or {}, now.get("columns") or {}
    columns = [c for c in now_columns if then_columns.get(c) != now_columns[c]]
    then_rows, now_rows = _chunks(str(then.get("rows", ""))), _chunks(now["rows"])
    matcher = difflib.SequenceMatcher(None, then_rows, now_rows, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for j in range(j1, j2):
                label = _row_label(account, kind, j)
                if j2 - j1 == 1 and columns:
                    # The only edited row of its run: the changed columns are its fields.
                    found.append(", ".join(f"{path}[{j}].{c}" for c in columns) + f" ({label})")
                elif columns:
                    found.append(f"{path}[{j}] ({label}): one of {', '.join(columns)}")
                else:
                    found.append(f"{path}[{j}] ({label})")
            continue
        for j in range(j1, j2):
            found.append(f"{path}[{j}] ({_row_label(account, kind, j)}): added or edited")
        if i2 > i1:
            span = f"[{i1}]" if i2 - i1 == 1 else f"[{i1}]..[{i2 - 1}]"
            found.append(
                f"{path} ({account.get('account')}): {i2 - i1} {_ROW_NOUN[kind]} removed "
                f"(were {kind}{span.replace('..[', f'..{kind}[')})"
            )
    return found


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


_NUMBER = {int, float}
_NUMBER_COLUMNS = (*_NUMBER_FIELDS, "min_trade_notional")
_TEXT_COLUMNS = tuple(n for n in _TEXT_FIELDS if n != "account")


def _finite(values: Sequence[Any]) -> bool:
    return not any(map(math.isinf, values)) and not any(map(math.isnan, values))


def _orders_look_valid(columns: list[str], rows: list[Any]) -> bool:
    """`_order`'s checks a column at a time (the whole table at C speed): True when every
    order passes them; else `_order` finds and names the first that does not."""
    if not rows:
        return True
    column = dict(zip(columns, zip(*rows, strict=True), strict=True))
    try:
        limits = [p for p in column["limit_price"] if p is not None]
        return (
            all(
                set(map(type, column[n])) <= _NUMBER and _finite(column[n])
                for n in _NUMBER_COLUMNS
            )
            and all(set(map(type, column[n])) == {str} for n in _TEXT_COLUMNS)
            and set(map(type, column["leg"])) == {int}
            and min(column["leg"]) >= 1
            and set(map(type, column["con_id"])) == {int}
            and set(column["side"]) <= {"BUY", "SELL"}
            and set(map(type, limits)) <= _NUMBER
            and _finite(limits)
            and set(map(type, column["outside_rth"])) == {bool}
            and min(column["quantity"]) > 0
        )
    except TypeError:  # an unhashable side, say
        return False


def _order(data: dict[str, Any], path: str) -> PlannedOrder:
    """One order, its fields checked for type: apply sends exactly these values."""
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
    if not _is_number(data["min_trade_notional"]):
        bad.append("min_trade_notional")
    if _is_number(data["quantity"]) and data["quantity"] <= 0:
        bad.append("quantity")
    if bad:
        shown = ", ".join(f"{n}={data[n]!r}" for n in bad)
        raise PlanFileError(f"{path} has invalid field(s): {shown}")
    made = object.__new__(PlannedOrder)
    made.__dict__.update(data)
    return made


def _time(data: Mapping[str, Any], key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{key} is missing or not an ISO time: {exc}") from exc
    if value.tzinfo is None:
        raise PlanFileError(f"{key} {data[key]!r} has no time zone (plans are in UTC)")
    return value


def _read_table(account: Mapping[str, Any], kind: str, path: str) -> tuple[list[str], list[Any]]:
    """An account's table, its columns exactly the known set and every row as wide."""
    where = f"{path}.{kind}"
    table = account.get(kind)
    if not isinstance(table, Mapping) or set(table) != {"columns", "rows"}:
        raise PlanFileError(f"{where} is missing or not a table (an object of columns and rows)")
    columns, rows = table["columns"], table["rows"]
    expected = _COLUMNS[kind]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PlanFileError(f"{where}.columns is not a list of field names")
    if len(columns) != len(expected) or set(columns) != set(expected):
        missing = [c for c in expected if c not in columns]
        unknown = [c for c in columns if c not in expected]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        said = [
            f"{label} {', '.join(names)}"
            for label, names in (("missing", missing), ("unknown", unknown), ("repeated", repeated))
            if names
        ]
        raise PlanFileError(f"{where}.columns: {'; '.join(said)} (expected {', '.join(expected)})")
    if not isinstance(rows, list):
        raise PlanFileError(f"{where}.rows is not a list")
    width = len(columns)
    if rows and (set(map(type, rows)) != {list} or set(map(len, rows)) != {width}):
        j = next(j for j, row in enumerate(rows) if type(row) is not list or len(row) != width)
        raise PlanFileError(f"{where}[{j}] is not a row of {width} values")
    return columns, rows


def _records(cls: type[_T], columns: list[str], rows: list[Any], account: str) -> tuple[_T, ...]:
    """The rows as `cls` instances, bypassing the frozen `__init__` like `make` (every field
    is a column or the account)."""
    new = object.__new__
    made = []
    for row in rows:
        item = new(cls)
        state = item.__dict__
        state["account"] = account
        state.update(zip(columns, row, strict=True))
        made.append(item)
    return tuple(made)


def _account(a: Any, path: str) -> AccountPlan:
    if not isinstance(a, Mapping):
        raise PlanFileError(f"{path} is not an object")
    name = a.get("account")
    if not isinstance(name, str):
        raise PlanFileError(f"{path}.account is missing or not a string")
    columns, rows = _read_table(a, "drift", path)
    drift = _records(DriftRow, columns, rows, name)
    columns, rows = _read_table(a, "orders", path)
    if not _orders_look_valid(columns, rows):
        for j, row in enumerate(rows):  # find and name the first invalid order
            _order({"account": name, **dict(zip(columns, row, strict=True))}, f"{path}.orders[{j}]")
        # The two checks are one rule written twice (per column for speed, per order to name
        # the culprit): should they ever disagree, the stricter one refuses the file.
        raise PlanFileError(f"{path}.orders: an order fails the plan's order checks")
    orders = _records(PlannedOrder, columns, rows, name)
    columns, rows = _read_table(a, "decisions", path)
    details = list(map(operator.itemgetter(columns.index("detail")), rows))
    if rows and set(map(type, details)) != {dict}:
        j = next(j for j, d in enumerate(details) if type(d) is not dict)
        raise PlanFileError(f"{path}.decisions[{j}].detail is not an object")
    decisions = _records(RiskDecision, columns, rows, name)
    notes = a.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise PlanFileError(f"{path}.notes must be a list of strings")
    try:
        return AccountPlan(
            account=name,
            portfolio=a["portfolio"],
            risk_policy=a["risk_policy"],
            base_currency=a["base_currency"],
            net_liquidation=a["net_liquidation"],
            capital=a["capital"],
            drift=drift,
            orders=orders,
            decisions=decisions,
            notes=tuple(notes),
            cash_for_buys=a.get("cash_for_buys"),
        )
    except KeyError as exc:
        raise PlanFileError(f"{path} has no {exc}") from exc


def _build(data: Mapping[str, Any]) -> Plan:
    accounts = data.get("accounts")
    if not isinstance(accounts, list):
        raise PlanFileError("accounts is missing or not a list")
    built = tuple(_account(a, f"accounts[{i}]") for i, a in enumerate(accounts))
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
            accounts=built,
            desired_snapshot=_expand_snapshot(data.get("desired_snapshot", {})),
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
    """The totals and legs must agree with `accounts[].orders`, even under a valid digest
    (whoever edits a file can recompute a digest). A version 4 plan has no top-level copies
    of the orders or decisions: one added is refused rather than left to mislead a reader."""
    problems = [
        f"{key}: a version {PLAN_FORMAT_VERSION} plan has no top-level {key} (they are "
        f"accounts[].{key} only)"
        for key in _LEGACY_COPIES
        if key in data
    ]
    if data.get("totals") != plan.totals:
        problems.append(f"totals {data.get('totals')!r} do not match the orders ({plan.totals!r})")
    legs = [order.leg for account in plan.accounts for order in account.orders]
    if len(set(legs)) != len(legs):
        seen: dict[int, str] = {}
        for i, account in enumerate(plan.accounts):
            for j, order in enumerate(account.orders):
                path = f"accounts[{i}].orders[{j}]"
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
