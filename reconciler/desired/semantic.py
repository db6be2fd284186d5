"""Semantic checks and model building: what the schema cannot say.

Responsible for turning schema-valid documents into frozen model objects (units parsed:
percentages to fractions, durations to seconds) and for the checks that need values or
several documents at once: weights plus cash reserve at most 100%, an instrument at most
once per portfolio, one portfolio per account, the referenced RiskPolicy exists, no
restricted instrument targeted, unique names per kind, valid cron and time zone, schedule
accounts that exist and are driven by one schedule only, lock entries that agree with
pinned conIds. Every check reports through `Findings` with a JSON pointer; nothing raises
for bad input. Builders always return a model (a value that failed to parse keeps its
default) so that later checks still run; the loader discards the state when any error was
found. Must not read files or know about YAML syntax.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.desired.units import parse_duration, parse_percent, parse_spread, parse_weight
from reconciler.desired.yaml_strict import ParsedDocument
from reconciler.model.desired import (
    Band,
    ExecutionPolicy,
    Instrument,
    LockedInstrument,
    Portfolio,
    RiskPolicy,
    Schedule,
    SourceRef,
    Target,
    TradingWindow,
)
from reconciler.model.diagnostics import Diagnostic

DEFAULT_RISK_POLICY = "default"
DEFAULT_TIMEZONE = "America/New_York"
SHORT_INTERVAL_SECONDS = 60.0
_EPSILON = 1e-9


@dataclass
class SourceDocument:
    """A dispatched document: which file it is in, its kind, and whether it passed the schema."""

    file: str
    document: ParsedDocument
    kind: str
    schema_valid: bool
    shown_file: str = ""  # the path as diagnostics show it (relative to the working directory)

    @property
    def value(self) -> dict[str, Any]:
        return self.document.value

    @property
    def shown(self) -> str:
        return self.shown_file or self.file

    @property
    def name(self) -> str | None:
        metadata = self.value.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else None

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.value.get("spec")
        return spec if isinstance(spec, dict) else {}

    def source(self, pointer: str = "") -> SourceRef:
        return SourceRef(self.file, self.document.position_of(pointer).line)


@dataclass
class Findings:
    """Collects diagnostics with positions resolved from the document's pointer map."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        doc: SourceDocument,
        pointer: str,
        code: str,
        message: str,
        *,
        severity: str = "error",
        at_key: bool = False,
    ) -> None:
        at = doc.document.position_of(pointer, key=at_key)
        self.items.append(
            Diagnostic(doc.file, at.line, at.column, pointer, code, message, severity)
        )

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)


@dataclass
class BuiltState:
    portfolios: tuple[Portfolio, ...]
    risk_policies: dict[str, RiskPolicy]
    schedules: tuple[Schedule, ...]


def _pct(fraction: float) -> str:
    return f"{round(fraction * 100, 6):g}%"


def _parse(
    findings: Findings,
    doc: SourceDocument,
    pointer: str,
    code: str,
    parser: Callable[[Any], float],
    value: Any,
    *,
    positive: bool = True,
) -> float | None:
    """Parse a unit value; record a diagnostic and return None when it does not parse."""
    try:
        parsed = parser(value)
    except ValueError as exc:
        findings.add(doc, pointer, code, str(exc))
        return None
    if not math.isfinite(parsed):
        findings.add(doc, pointer, "E_NUMBER_NOT_FINITE", f"{value!r} is not a finite number")
        return None
    if positive and parsed <= 0:
        findings.add(doc, pointer, "E_OUT_OF_RANGE", f"must be more than zero, got {value}")
        return None
    return parsed


# --- Portfolio -------------------------------------------------------------------------


def _instrument(target: dict[str, Any]) -> Instrument:
    if "symbol" in target:
        return Instrument(target["symbol"])
    raw = target["instrument"]
    if isinstance(raw, str):
        return Instrument(raw)
    return Instrument(
        symbol=raw["symbol"],
        sec_type=raw.get("secType", "STK"),
        exchange=raw.get("exchange", "SMART"),
        primary_exchange=raw.get("primaryExchange"),
        currency=raw.get("currency", "USD"),
        con_id=raw.get("conId"),
    )


def build_portfolio(doc: SourceDocument, findings: Findings) -> Portfolio:
    spec = doc.spec
    targets: list[Target] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(spec["targets"]):
        pointer = f"/spec/targets/{index}"
        instrument = _instrument(raw)
        if instrument.key in first_index:
            findings.add(
                doc,
                pointer,
                "E_DUPLICATE_INSTRUMENT",
                f"{instrument.key} is already targeted by targets[{first_index[instrument.key]}]"
                "; list each instrument once",
            )
        else:
            first_index[instrument.key] = index
        weight = quantity = None
        if "weight" in raw:
            weight = _parse(
                findings, doc, pointer + "/weight", "E_BAD_WEIGHT", parse_weight, raw["weight"]
            )
        else:
            quantity = float(raw["quantity"])
        targets.append(Target(instrument, weight, quantity, doc.source(pointer)))

    cash_reserve = 0.0
    if "cashReserve" in spec:
        cash_reserve = (
            _parse(
                findings,
                doc,
                "/spec/cashReserve",
                "E_BAD_PERCENT",
                parse_percent,
                spec["cashReserve"],
                positive=False,
            )
            or 0.0
        )
    total_weight = sum(t.weight for t in targets if t.weight is not None)
    if total_weight + cash_reserve > 1 + _EPSILON:
        findings.add(
            doc,
            "/spec/targets",
            "E_WEIGHTS_EXCEED_100",
            f"target weights add up to {_pct(total_weight)} and cashReserve is "
            f"{_pct(cash_reserve)}: {_pct(total_weight + cash_reserve)} is more than 100%",
            at_key=True,
        )

    band = Portfolio.__dataclass_fields__["band"].default
    if "band" in spec:
        raw_band = spec["band"]
        absolute = relative = None
        if "absolute" in raw_band:
            absolute = _parse(
                findings,
                doc,
                "/spec/band/absolute",
                "E_BAD_PERCENT",
                parse_percent,
                raw_band["absolute"],
                positive=False,
            )
        if "relative" in raw_band:
            relative = _parse(
                findings,
                doc,
                "/spec/band/relative",
                "E_BAD_PERCENT",
                parse_percent,
                raw_band["relative"],
            )
        band = Band(absolute=absolute, relative=relative)

    execution = _execution(doc, findings, spec.get("execution", {}))
    return Portfolio(
        name=doc.name or "",
        account=spec["account"],
        targets=tuple(targets),
        cash_reserve=cash_reserve,
        capital=float(spec["capital"]) if "capital" in spec else None,
        band=band,
        min_trade_notional=float(spec.get("minTradeNotional", 0.0)),
        unmanaged=spec.get("unmanaged", "ignore"),
        sells=spec.get("sells", "allowed"),
        execution=execution,
        risk_policy=spec.get("riskPolicy", DEFAULT_RISK_POLICY),
        source=doc.source(),
    )


def _execution(doc: SourceDocument, findings: Findings, raw: dict[str, Any]) -> ExecutionPolicy:
    defaults = ExecutionPolicy()
    ttl = defaults.ttl_seconds
    if "ttl" in raw:
        ttl = (
            _parse(
                findings, doc, "/spec/execution/ttl", "E_BAD_DURATION", parse_duration, raw["ttl"]
            )
            or ttl
        )
    return ExecutionPolicy(
        order_type=raw.get("orderType", defaults.order_type),
        limit_offset_bps=float(raw.get("limitOffsetBps", defaults.limit_offset_bps)),
        time_in_force=raw.get("timeInForce", defaults.time_in_force),
        ttl_seconds=ttl,
        outside_rth=raw.get("outsideRth", defaults.outside_rth),
    )


# --- RiskPolicy ------------------------------------------------------------------------


def build_risk_policy(doc: SourceDocument, findings: Findings) -> RiskPolicy:
    spec = doc.spec
    turnover = price_age = spread = None
    if "maxCycleTurnover" in spec:
        turnover = _parse(
            findings,
            doc,
            "/spec/maxCycleTurnover",
            "E_BAD_PERCENT",
            parse_percent,
            spec["maxCycleTurnover"],
        )
    if "maxPriceAge" in spec:
        price_age = _parse(
            findings,
            doc,
            "/spec/maxPriceAge",
            "E_BAD_DURATION",
            parse_duration,
            spec["maxPriceAge"],
        )
    if "maxSpread" in spec:
        spread = _parse(
            findings, doc, "/spec/maxSpread", "E_BAD_SPREAD", parse_spread, spec["maxSpread"]
        )
    if "maxOrderNotional" not in spec:
        findings.add(
            doc,
            "/spec",
            "W_NO_ORDER_LIMIT",
            "no maxOrderNotional: single orders are limited only by environment overrides",
            severity="warning",
        )

    def number(name: str) -> float | None:
        return float(spec[name]) if name in spec else None

    return RiskPolicy(
        name=doc.name or "",
        trading_state=spec.get("tradingState", "ACTIVE"),
        max_order_notional=number("maxOrderNotional"),
        max_position_notional=number("maxPositionNotional"),
        max_leverage=number("maxLeverage"),
        max_orders_per_cycle=spec.get("maxOrdersPerCycle"),
        max_cycle_turnover=turnover,
        max_daily_notional=number("maxDailyNotional"),
        max_price_age_seconds=price_age,
        max_spread=spread,
        restricted=tuple(spec.get("restricted", ())),
        on_breach=spec.get("onBreach", "clip"),
        allow_delayed_data=bool(spec.get("allowDelayedData", False)),
        source=doc.source(),
    )


# --- Schedule --------------------------------------------------------------------------


def _check_timezone(doc: SourceDocument, findings: Findings, name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        findings.add(
            doc,
            "/spec/timezone",
            "E_BAD_TIMEZONE",
            f"{name!r} is not an IANA time zone; use a name like America/New_York or UTC",
        )
        return False
    return True


def _check_cron(doc: SourceDocument, findings: Findings, expression: str, timezone: str) -> None:
    from apscheduler.triggers.cron import CronTrigger

    if len(expression.split()) != 5:
        findings.add(
            doc,
            "/spec/cron",
            "E_BAD_CRON",
            f"{expression!r} has {len(expression.split())} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week",
        )
        return
    try:
        CronTrigger.from_crontab(expression, timezone=timezone)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        findings.add(doc, "/spec/cron", "E_BAD_CRON", f"{expression!r} is not valid cron: {exc}")


def build_schedule(doc: SourceDocument, findings: Findings) -> Schedule:
    spec = doc.spec
    timezone = spec.get("timezone", DEFAULT_TIMEZONE)
    timezone_ok = _check_timezone(doc, findings, timezone)
    interval = None
    if "interval" in spec:
        interval = _parse(
            findings, doc, "/spec/interval", "E_BAD_DURATION", parse_duration, spec["interval"]
        )
        if interval is not None and interval < SHORT_INTERVAL_SECONDS:
            findings.add(
                doc,
                "/spec/interval",
                "W_SHORT_INTERVAL",
                f"cycles every {spec['interval']} will hit IB pacing limits; 1m or more is "
                "recommended",
                severity="warning",
            )
    if "cron" in spec:
        _check_cron(doc, findings, spec["cron"], timezone if timezone_ok else "UTC")
    window = spec.get("window", {})
    return Schedule(
        name=doc.name or "",
        interval_seconds=interval,
        cron=spec.get("cron"),
        timezone=timezone,
        window=TradingWindow(
            avoid_open_minutes=window.get("avoidOpenMinutes", 0),
            avoid_close_minutes=window.get("avoidCloseMinutes", 0),
        ),
        self_heal=spec.get("selfHeal", False),
        accounts=tuple(spec.get("accounts", ())),
        source=doc.source(),
    )


# --- across documents ------------------------------------------------------------------


def _check_unique_names(documents: list[SourceDocument], findings: Findings) -> None:
    seen: dict[tuple[str, str], SourceDocument] = {}
    for doc in documents:
        if doc.name is None:
            continue
        first = seen.setdefault((doc.kind, doc.name), doc)
        if first is not doc:
            findings.add(
                doc,
                "/metadata/name",
                "E_DUPLICATE_NAME",
                f"another {doc.kind} is already named {doc.name!r} "
                f"({first.shown}:{first.document.position_of('/metadata/name').line})",
            )


def _check_unique_accounts(documents: list[SourceDocument], findings: Findings) -> None:
    seen: dict[str, SourceDocument] = {}
    for doc in documents:
        account = doc.spec.get("account")
        if doc.kind != "Portfolio" or not isinstance(account, str):
            continue
        first = seen.setdefault(account, doc)
        if first is not doc:
            findings.add(
                doc,
                "/spec/account",
                "E_DUPLICATE_ACCOUNT",
                f"account {account} is already driven by Portfolio {first.name!r} "
                f"({first.shown}); one portfolio per account",
            )


def _check_policy_references(
    portfolios: list[tuple[SourceDocument, Portfolio]],
    policy_names: set[str],
    policies: Mapping[str, RiskPolicy],
    findings: Findings,
    complete: bool,
) -> None:
    for doc, portfolio in portfolios:
        pointer = "/spec/riskPolicy" if "riskPolicy" in doc.spec else "/spec"
        if portfolio.risk_policy not in policy_names:
            if not complete:
                continue  # the policy may be in a document that could not be read
            known = ", ".join(sorted(policy_names)) or "none"
            implied = "" if "riskPolicy" in doc.spec else " (the default when riskPolicy is unset)"
            findings.add(
                doc,
                pointer,
                "E_UNKNOWN_RISK_POLICY",
                f"RiskPolicy {portfolio.risk_policy!r}{implied} does not exist "
                f"(RiskPolicies here: {known})",
            )
            continue
        policy = policies.get(portfolio.risk_policy)
        if policy is None:
            continue
        restricted = set(policy.restricted)
        for index, target in enumerate(portfolio.targets):
            hit = {target.instrument.key, target.instrument.symbol} & restricted
            if hit:
                findings.add(
                    doc,
                    f"/spec/targets/{index}",
                    "E_RESTRICTED_TARGET",
                    f"{target.instrument.key} is restricted by RiskPolicy {policy.name!r} "
                    "and may not be targeted",
                )


def _check_schedule_accounts(
    schedules: list[tuple[SourceDocument, Schedule]],
    accounts: set[str],
    findings: Findings,
    complete: bool,
) -> None:
    driven_by: dict[str, str] = {}
    for doc, schedule in schedules:
        covered = schedule.accounts or tuple(sorted(accounts))
        for index, account in enumerate(schedule.accounts):
            if complete and account not in accounts:
                findings.add(
                    doc,
                    f"/spec/accounts/{index}",
                    "E_UNKNOWN_ACCOUNT",
                    f"no Portfolio drives account {account}",
                )
        for account in covered:
            other = driven_by.setdefault(account, schedule.name)
            if other != schedule.name:
                pointer = "/spec/accounts" if schedule.accounts else "/spec"
                findings.add(
                    doc,
                    pointer,
                    "E_SCHEDULE_OVERLAP",
                    f"account {account} is already driven by Schedule {other!r}; "
                    "list accounts so each is driven by one schedule",
                )
                break


def _check_lock(
    portfolios: list[tuple[SourceDocument, Portfolio]],
    lock: Mapping[str, LockedInstrument],
    findings: Findings,
) -> None:
    for doc, portfolio in portfolios:
        for index, target in enumerate(portfolio.targets):
            pinned = target.instrument.con_id
            locked = lock.get(target.instrument.key)
            if pinned is not None and locked is not None and locked.con_id != pinned:
                findings.add(
                    doc,
                    f"/spec/targets/{index}/instrument/conId",
                    "E_LOCK_CONID_MISMATCH",
                    f"{target.instrument.key} pins conId {pinned} but the lockfile has "
                    f"{locked.con_id}; run `reconcile lock` and review the change",
                )


def build_state(
    documents: list[SourceDocument],
    lock: Mapping[str, LockedInstrument],
    *,
    complete: bool,
) -> tuple[BuiltState, list[Diagnostic]]:
    """Model objects and every semantic finding. `complete` = every document was readable.

    Checks that a missing document could make wrong (an unknown reference) run only when
    `complete`; documents that failed the schema take part in name and account uniqueness
    and satisfy references, but are not built.
    """
    findings = Findings()
    builders = {
        "Portfolio": build_portfolio,
        "RiskPolicy": build_risk_policy,
        "Schedule": build_schedule,
    }
    built: dict[str, list[tuple[SourceDocument, Any]]] = {kind: [] for kind in builders}
    for doc in documents:
        if not doc.schema_valid:
            continue
        built[doc.kind].append((doc, builders[doc.kind](doc, findings)))

    _check_unique_names(documents, findings)
    _check_unique_accounts(documents, findings)
    policy_names = {d.name for d in documents if d.kind == "RiskPolicy" and d.name}
    policies = {policy.name: policy for _, policy in built["RiskPolicy"]}
    _check_policy_references(built["Portfolio"], policy_names, policies, findings, complete)
    accounts = {
        d.spec["account"]
        for d in documents
        if d.kind == "Portfolio" and isinstance(d.spec.get("account"), str)
    }
    _check_schedule_accounts(built["Schedule"], accounts, findings, complete)
    _check_lock(built["Portfolio"], lock, findings)

    state = BuiltState(
        portfolios=tuple(sorted((p for _, p in built["Portfolio"]), key=lambda p: p.name)),
        risk_policies=dict(sorted(policies.items())),
        schedules=tuple(sorted((s for _, s in built["Schedule"]), key=lambda s: s.name)),
    )
    return state, findings.items
