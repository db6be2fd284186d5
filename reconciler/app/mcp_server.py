"""`reconcile mcp`: a Model Context Protocol server (official `mcp` SDK) for LLM assistants.

Responsible for read-only tools (validate, plan, status, show_orders, show_fills,
explain_drift, explain_denial), two resources (the latest cycle report, the effective risk
limits) and a log line on stderr for every call (tool or resource, arguments, outcome,
duration). Must not apply, halt, resume, unlock or cancel, write to the store (opened
read-only) or offer any tool that changes state; every tool says so in its description and
carries the MCP read-only annotation. Only `plan` connects to a gateway, read-only, through
cycle/plan (which imports the IB client library on use).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from reconciler.app.serve import data

LOG = logging.getLogger("reconciler.mcp")
READ_ONLY_NOTE = (
    " Read-only: this server cannot apply, halt, resume or cancel anything; changes go "
    "through git and the `reconcile` command."
)
LATEST_REPORT_URI = "reconciler://cycles/latest/report"
RISK_LIMITS_URI = "reconciler://risk/limits"

# Each risk code in plain words; {name} placeholders are filled from the denial's detail.
RISK_CODES: dict[str, str] = {
    "TRADING_HALTED": "Trading is halted (RiskPolicy tradingState: HALTED in git, or the "
    "out-of-band `reconcile halt`): no order is allowed at all.",
    "TRADING_REDUCING_DENIES_INCREASE": "The RiskPolicy is in REDUCING state: orders may only "
    "shrink positions, and this one would increase one.",
    "INSTRUMENT_RESTRICTED": "The instrument is on the RiskPolicy's restricted list: only "
    "orders that reduce the position are allowed.",
    "PRICE_MISSING": "No usable price for the instrument, so the order's notional cannot be "
    "checked: denied.",
    "QUOTE_NOT_LIVE": "The order would be priced from the portfolio's market price (steady "
    "state skips live quotes for instruments clearly in band); an order is only ever sent "
    "on a live quote: denied.",
    "PRICE_TIME_MISSING": "The price has no timestamp, so its age cannot be checked: denied.",
    "QUOTE_DELAYED": "Only delayed or frozen market data was available; the RiskPolicy needs "
    "live data unless allowDelayedData: true.",
    "PRICE_TOO_OLD": "The price is older than the RiskPolicy's maxPriceAge.",
    "QUOTE_NOT_TWO_SIDED": "The quote lacks a bid or an ask, so the spread cannot be judged.",
    "SPREAD_TOO_WIDE": "The bid/ask spread is wider than the RiskPolicy's maxSpread.",
    "FX_RATE_MISSING": "No exchange rate to the account's base currency, so the notional "
    "cannot be compared with the limits.",
    "NOTIONAL_EXCEEDS_MAX_PER_ORDER": "The order's notional is above maxOrderNotional (the "
    "RiskPolicy's, or EXEC_RISK_MAX_ORDER_NOTIONAL when tighter and enabled).",
    "POSITION_EXCEEDS_MAX_NOTIONAL": "The position after the order would be above "
    "maxPositionNotional.",
    "NAV_UNKNOWN": "The account's net liquidation value is unknown, so weight and leverage "
    "checks cannot be evaluated.",
    "GROSS_EXPOSURE_UNKNOWN": "The gross exposure could not be computed, so the leverage "
    "check cannot be evaluated.",
    "LEVERAGE_EXCEEDS_MAX": "Gross exposure / NAV after the order would be above maxLeverage.",
    "ORDERS_PER_CYCLE_EXCEEDED": "The cycle already has maxOrdersPerCycle orders.",
    "CYCLE_TURNOVER_EXCEEDED": "The cycle's traded notional would exceed maxCycleTurnover "
    "(a share of NAV).",
    "DAILY_NOTIONAL_UNKNOWN": "Today's traded notional could not be read from the ledger, so "
    "maxDailyNotional cannot be checked.",
    "DAILY_NOTIONAL_EXCEEDED": "Today's traded notional plus this order would exceed "
    "maxDailyNotional.",
    "INSTRUMENT_UNRESOLVED": "The instrument could not be resolved to a single IB contract.",
    "LEDGER_BREAK": "The broker's position differs from the ledger's last snapshot plus "
    "recorded fills: the instrument is skipped for this cycle until the break is explained.",
}


def configure_call_log() -> None:
    """Call log lines on stderr (stdout carries the MCP protocol over stdio)."""
    if not any(getattr(h, "_reconciler_mcp", False) for h in LOG.handlers):
        import sys

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s mcp %(message)s"))
        handler._reconciler_mcp = True  # type: ignore[attr-defined]
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def _logged(kind: str, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with one log line per call: what was asked, how it ended, how long it took."""

    def line(args: dict[str, Any], outcome: str, started: float) -> None:
        LOG.info(
            "%s=%s args=%s outcome=%s ms=%.0f",
            kind,
            name,
            json.dumps(args, default=str, sort_keys=True),
            outcome,
            (time.perf_counter() - started) * 1000,
        )

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:
                line(kwargs, f"error:{type(exc).__name__}", started)
                raise
            line(kwargs, "ok", started)
            return result

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            line(kwargs, f"error:{type(exc).__name__}", started)
            raise
        line(kwargs, "ok", started)
        return result

    return wrapper


def _jsonable(value: Any) -> Any:
    from reconciler.store.models import to_jsonable

    return to_jsonable(value)


def explain_code(code: str, detail: dict[str, Any] | None = None) -> str:
    """A risk code in plain words, with its numbers (pure)."""
    words = RISK_CODES.get(code)
    if words is None:
        words = f"{code} is not a risk code this reconciler knows (see README, Risk decisions)."
    if detail:
        numbers = ", ".join(f"{k}={v}" for k, v in detail.items())
        words += f" Numbers: {numbers}."
        if {"max", "got"} <= set(detail):
            words += f" The limit is {detail['max']}; the order asked for {detail['got']}."
        if "allowed" in detail:
            words += f" At most {detail['allowed']} was allowed (clipped to that)."
    return words


def build_server(store: Any, *, settings: Any, directory: str = "desired_state") -> Any:
    """The MCP server over a read-only store; `directory` is the default desired state."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer(
        name="ib-reconciler",
        instructions="Read-only windows onto an IBKR portfolio reconciler: what the accounts "
        "should hold (git), what they hold, what the last cycles did and why. It cannot trade, "
        "apply, halt or cancel: changes go through git and the `reconcile` command.",
    )
    read_only = ToolAnnotations(
        readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False
    )
    gateway_read = ToolAnnotations(
        readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True
    )

    def tool(description: str, annotations: Any = read_only):
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            wrapped = _logged("tool", func.__name__, func)
            server.tool(
                name=func.__name__,
                description=description + READ_ONLY_NOTE,
                annotations=annotations,
            )(wrapped)
            return func

        return register

    def load_desired(path: str | None):
        from reconciler.desired import load_desired_state

        return load_desired_state(path or directory)

    @tool(
        "Validate the desired-state directory (YAML schema and semantic checks); returns "
        "`valid` and every diagnostic with file, line and code."
    )
    def validate(path: str | None = None) -> dict[str, Any]:
        from reconciler.model.diagnostics import DiagnosticsError

        try:
            desired = load_desired(path)
        except DiagnosticsError as exc:
            return {
                "valid": False,
                "diagnostics": [_jsonable(d) for d in exc.diagnostics],
            }
        return {
            "valid": True,
            "hash": desired.content_hash,
            "accounts": [p.account for p in desired.portfolios],
            "risk_policies": sorted(desired.risk_policies),
        }

    @tool(
        "Plan: snapshot the gateway (read-only connection) and compute the orders that "
        "would bring the accounts to the desired state, within the risk limits. Never "
        "applies and sends nothing; returns the plan as text and its orders and risk "
        "decisions.",
        annotations=gateway_read,
    )
    async def plan(accounts: list[str] | None = None, path: str | None = None) -> dict[str, Any]:
        from reconciler.cycle.plan import plan_cycle
        from reconciler.model.clock import SystemClock
        from reconciler.model.plan import document_decisions, document_orders, to_dict
        from reconciler.render.plan import render_plan

        desired = load_desired(path)
        outcome = await plan_cycle(
            desired, settings, clock=SystemClock(), store=store, accounts=accounts or None
        )
        body = to_dict(outcome.plan)
        return {
            "text": render_plan(outcome.plan, "text"),
            "plan_id": body.get("plan_id"),
            "orders": document_orders(body),
            "decisions": document_decisions(body),
        }

    @tool(
        "Status per account: last cycle and its outcome, drift summary, lock holder, "
        "unresolved orders, and whether trading is halted."
    )
    def status() -> dict[str, Any]:
        return _jsonable(data.status(store, settings))

    @tool("Recent orders (planned and sent) with their latest ledger outcome, newest first.")
    def show_orders(account: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        limit = max(1, min(limit, 500))
        return [_jsonable(o.as_dict()) for o in store.list_orders(account=account, limit=limit)]

    @tool("Recent fills (one per execution id) with price and commission, newest first.")
    def show_fills(account: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        limit = max(1, min(limit, 500))
        return [_jsonable(f.as_dict()) for f in store.list_fills(account=account, limit=limit)]

    @tool(
        "Explain why an account is out of band: the instruments outside their band after "
        "the last cycle, the risk checks that bound in the latest plan (with their numbers) "
        "and what the next cycle would do according to the latest recorded plan."
    )
    def explain_drift(account: str) -> dict[str, Any]:
        cycles = store.list_cycles(account=account, limit=1)
        if not cycles:
            return {"account": account, "explanation": f"No cycle recorded for {account}."}
        report = data.report_of(cycles[0])
        rows = data.current_drift(report, account)
        outside = [r for r in rows if r.get("status") == "managed" and not r.get("in_band")]
        unknown = [r for r in rows if r.get("status") not in ("managed", "unmanaged")]
        plan_body = data.latest_plan(store, account)
        summary = data.plan_summary(plan_body, account) if plan_body else None
        binding = [] if summary is None else summary["decisions"]
        lines = []
        if not outside and not unknown:
            lines.append(f"{account} is within band after cycle {cycles[0].id}.")
        for r in outside:
            lines.append(
                f"{r.get('key')}: weight {100 * (r.get('current_weight') or 0):.2f}% vs target "
                f"{100 * (r.get('target_weight') or 0):.2f}% (drift {100 * (r.get('drift') or 0):+.2f} pts)."
            )
        for r in unknown:
            lines.append(f"{r.get('key')}: drift unknown ({r.get('status')}).")
        for d in binding:
            lines.append(
                f"Risk {d['code']} ({d['action']}) on {d['key']}: "
                + explain_code(d["code"], d["detail"])
            )
        if summary is not None:
            lines.append(
                f"Latest plan {summary['plan_id']}: {len(summary['orders'])} order(s) for "
                f"{account}; the next cycle plans afresh from the broker's state, so run the "
                "`plan` tool for what it would do now."
            )
        return {
            "account": account,
            "cycle_id": cycles[0].id,
            "outside_band": outside,
            "unknown": unknown,
            "binding_risk_checks": binding,
            "latest_plan": summary and {"plan_id": summary["plan_id"], "orders": summary["orders"]},
            "explanation": "\n".join(lines),
        }

    @tool(
        "Explain a risk code (e.g. NOTIONAL_EXCEEDS_MAX_PER_ORDER) in plain words, with the "
        "numbers of its most recent recorded denial or clip (optionally of one account)."
    )
    def explain_denial(code: str, account: str | None = None) -> dict[str, Any]:
        code = code.strip().upper()
        recent = [d for d in store.list_denials(account=account, limit=500) if d["code"] == code]
        latest = recent[0] if recent else None
        detail = dict(latest["detail"]) if latest else None
        return {
            "code": code,
            "known": code in RISK_CODES,
            "explanation": explain_code(code, detail),
            "latest": None if latest is None else _jsonable(latest),
            "recorded": len(recent),
        }

    def resource(uri: str, description: str):
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            server.resource(
                uri, name=func.__name__, description=description, mime_type="application/json"
            )(_logged("resource", func.__name__, func))
            return func

        return register

    @resource(LATEST_REPORT_URI, "The report of the newest recorded cycle (JSON).")
    def latest_cycle_report() -> str:
        cycles = store.list_cycles(limit=1)
        if not cycles:
            return json.dumps({"cycle": None})
        return json.dumps(
            {"cycle": _jsonable(data.cycle_summary(cycles[0])), "report": data.report_of(cycles[0])},
            default=str,
        )

    @resource(
        RISK_LIMITS_URI,
        "Effective risk limits per RiskPolicy and where each comes "
        "from (git, environment override, halt).",
    )
    def risk_limits() -> str:
        from reconciler.decide.risk import effective_limits

        desired = load_desired(None)
        halt = store.current_halt()
        policies = {}
        for name, policy in sorted(desired.risk_policies.items()):
            limits = effective_limits(policy, settings.risk_env, halt=halt.reason if halt else None)
            policies[name] = [
                {"limit": row.name, "value": _jsonable(row.value), "source": row.source}
                for row in limits.rows()
            ]
        return json.dumps({"halted": halt is not None, "policies": policies}, default=str)

    return server
