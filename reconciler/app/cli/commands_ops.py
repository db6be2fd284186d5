"""CLI commands for operators: status, show, health, halt/resume, unlock, audit verify.

They read the store (and, for health, the gateway). Parse, call, render, exit; no logic here.
Only `health` imports the IB client library, and only inside the command.
"""

from __future__ import annotations

import re
import sys

import click

from reconciler.app.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    directory_argument,
    fail,
    gateway_option,
    load_settings_or_fail,
    open_store_or_fail,
    use_color,
)
from reconciler.model.settings import NOTIFY_EVENTS

TABLE_FORMATS = click.Choice(["text", "json", "markdown"])


def _as_dict(row) -> dict:
    if isinstance(row, dict):
        return row
    if hasattr(row, "as_dict"):
        return row.as_dict()
    from dataclasses import asdict, is_dataclass

    return asdict(row) if is_dataclass(row) else dict(vars(row))


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+%?$")


def _numeric_columns(columns: list[str], cells: list[list[str]]) -> frozenset[str]:
    """Columns whose every filled cell is a number: right-aligned, so digits line up."""
    numeric = set()
    for i, column in enumerate(columns):
        values = [row[i] for row in cells if row[i] not in ("", "-")]
        if values and all(_NUMBER.match(v) for v in values):
            numeric.add(column)
    return frozenset(numeric)


def _render_rows(rows: list[dict], fmt: str, title: str) -> str:
    from reconciler.render.plan import _md_table, render_json

    if fmt == "json":
        return render_json(rows)
    if not rows:
        return f"{title}: none recorded.\n"
    columns = list(rows[0].keys())
    cells = [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    right = _numeric_columns(columns, cells)
    if fmt == "markdown":
        return _md_table(columns, cells, right) + "\n"
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        table.add_column(c, justify="right" if c in right else "left")
    for row in cells:
        table.add_row(*row)
    buffer = io.StringIO()
    color = use_color()
    Console(
        file=buffer, width=160, force_terminal=color, no_color=not color, highlight=False
    ).print(table)
    return buffer.getvalue()


@click.command("status")
@click.option(
    "--format", "fmt", type=TABLE_FORMATS, default="text", show_default=True, help="Output format."
)
def status_command(fmt):
    """Last cycle per account, its drift, the lock holder and the halt switch."""
    settings = load_settings_or_fail()
    store = open_store_or_fail(settings)
    from reconciler.render.views import status_view

    halt = store.current_halt()
    rows = [status_view(r) for r in store.status_rows()]
    if fmt == "json":
        from reconciler.render.plan import render_json

        click.echo(
            render_json(
                {
                    "halt": None if halt is None else _as_dict(halt),
                    "accounts": rows,
                    "locks": [_as_dict(h) for h in store.lock_holders()],
                }
            ),
            nl=False,
        )
        return
    click.echo(
        f"Mode {settings.trading_mode}, orders {'enabled' if settings.orders_enabled else 'disabled'}"
    )
    click.echo("HALTED: " + halt.reason if halt else "Trading switch: not halted")
    click.echo(_render_rows(rows, fmt, "Accounts"), nl=False)
    holders = store.lock_holders()
    if holders:
        click.echo(_render_rows([_as_dict(h) for h in holders], fmt, "Locks"), nl=False)


@click.group("show")
def show_group():
    """Read the store (orders, fills, cycles, positions), the effective risk limits, or a
    saved plan."""


def _show(kind: str):
    @click.option("--account", default=None, help="Only this account.")
    @click.option(
        "--limit",
        default=50,
        show_default=True,
        type=click.IntRange(1, 100000),
        help="Rows at most.",
    )
    @click.option(
        "--format",
        "fmt",
        type=TABLE_FORMATS,
        default="text",
        show_default=True,
        help="Output format.",
    )
    def command(account, limit, fmt):
        settings = load_settings_or_fail()
        store = open_store_or_fail(settings)
        query = {
            "orders": store.list_orders,
            "fills": store.list_fills,
            "cycles": store.list_cycles,
            "positions": store.latest_positions,
        }[kind]
        from reconciler.render import views

        view = {
            "orders": views.order_view,
            "fills": views.fill_view,
            "cycles": views.cycle_view,
            "positions": views.position_view,
        }[kind]
        rows = [
            (_as_dict(r) if fmt == "json" else view(r)) for r in query(account=account, limit=limit)
        ]
        click.echo(_render_rows(rows, fmt, kind.capitalize()), nl=False)

    command.__doc__ = {
        "orders": "Recent planned and sent orders with their orderRef and outcome, newest first.",
        "fills": "Recent fills (one per execId) with price and commission, newest first.",
        "cycles": "Recent cycles: kind, status, plan, desired commit, duration.",
        "positions": "Latest position snapshots recorded by cycles, per account.",
    }[kind]
    return click.command(kind)(command)


@click.command("risk")
@directory_argument()
@click.option(
    "--format", "fmt", type=TABLE_FORMATS, default="text", show_default=True, help="Output format."
)
def show_risk_command(directory, fmt):
    """Effective risk limits per RiskPolicy of DIRECTORY (default desired_state/) and where
    each came from (git, env, halt)."""
    from reconciler.app.cli.common import load_desired_or_fail
    from reconciler.decide.risk import effective_limits
    from reconciler.model.settings import SettingsError

    settings = load_settings_or_fail()
    desired = load_desired_or_fail(directory)
    store = open_store_or_fail(settings)
    halt = store.current_halt()
    rows = []
    try:
        for name, policy in sorted(desired.risk_policies.items()):
            limits = effective_limits(policy, settings.risk_env, halt=halt.reason if halt else None)
            for limit in limits.rows():
                value = limit.value
                if isinstance(value, tuple | list):
                    value = ",".join(value) or "-"
                elif fmt != "json" and isinstance(value, int | float) and not isinstance(
                    value, bool
                ):
                    value = f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"
                rows.append(
                    {
                        "policy": name,
                        "limit": limit.name,
                        "value": "unset" if value is None else value,
                        "source": limit.source,
                        "note": getattr(limit, "note", "") or "",
                    }
                )
    except SettingsError as exc:
        fail(str(exc))
    click.echo(_render_rows(rows, fmt, "Effective risk limits"), nl=False)
    if fmt == "text":
        raw = {
            k: settings.risk_env.get(k, "")
            for k in (
                "EXEC_RISK_ENABLED",
                "EXEC_RISK_MAX_ORDER_NOTIONAL",
                "EXEC_RISK_MAX_POSITION_NOTIONAL",
                "EXEC_RISK_MAX_LEVERAGE",
            )
        }
        click.echo("\n# Raw environment variables (empty means not set)")
        for k, v in raw.items():
            click.echo(f"{k}={v}")


@click.command("health")
@click.option(
    "--check-orders",
    is_flag=True,
    help="Also place a far-from-market limit order on a paper account and cancel it.",
)
@click.option(
    "--account", default=None, help="Account for --check-orders (default: first managed)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@gateway_option(
    client_id_help="API client id. Default: IB_READONLY_CLIENT_ID, else 18, so it can run "
    "next to the daemon; with --check-orders IB_CLIENT_ID, else 17 (it places an order)."
)
def health_command(check_orders, account, fmt, gateway):
    """Handshake, server time, managed accounts, mode and gates. Exit 0 healthy, 1 not."""
    import asyncio

    from reconciler.app.gateway import gateway_settings
    from reconciler.app.health import run_health
    from reconciler.model.settings import SettingsError

    settings = load_settings_or_fail(readonly=not check_orders)
    try:
        with gateway_settings(gateway, settings) as gw:
            result = asyncio.run(run_health(gw, check_orders=check_orders, account=account))
    except SettingsError as exc:
        fail(str(exc))
    if fmt == "json":
        from reconciler.render.plan import render_json

        click.echo(render_json(result), nl=False)
    else:
        for line in result["lines"]:
            click.echo(line)
    sys.exit(EXIT_OK if result["healthy"] else EXIT_ERROR)


@click.command("halt")
@click.option("--reason", required=True, help="Why trading stops; shown in status and reports.")
@click.option(
    "--cancel-open",
    is_flag=True,
    help="Also cancel this reconciler's open orders (orderRef rc-...) at the gateway. Connects "
    "with --client-id, else IB_OPERATOR_CLIENT_ID (default 90), never the apply's id. A running "
    "apply cancels its own orders once it sees the halt; a dead one's are cancelled with its "
    "client id; IB_MASTER_CLIENT_ID, when set, is the fallback for the rest.",
)
@click.option(
    "--global-cancel",
    is_flag=True,
    help="With --cancel-open, as a last resort for orders still working after the owner had its "
    "chance: send reqGlobalCancel, which cancels EVERY open order of the account(s), including "
    "orders placed by hand in TWS or by other programs.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(0, 600),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="With --cancel-open, seconds to wait for the orders to stop working.",
)
@gateway_option(
    client_id_help="API client id for --cancel-open. Default: IB_OPERATOR_CLIENT_ID, else 90 "
    "(never IB_CLIENT_ID, which a running apply holds)."
)
def halt_command(reason, cancel_open, global_cancel, wait_seconds, gateway):
    """Out-of-band kill switch: stop all trading now, without waiting for a pull request.

    Honoured by running cycles before every order and at least every second while their
    orders work (they then cancel them). Only ever stricter than git. Exit 0 recorded; 1 when
    the halt could not be recorded (trading is then NOT halted: the message says what to do),
    or with --cancel-open naming every order still working.
    """
    from reconciler.store import open_store
    from reconciler.util.process import holder_name

    if global_cancel and not cancel_open:
        fail("--global-cancel needs --cancel-open; nothing was recorded")
    ctx = click.get_current_context()
    explicit_client_id = ctx.meta.get("settings_flags", {}).get("client_id")
    settings = load_settings_or_fail()
    recorded = False
    store = None
    try:
        store = open_store(settings.effective_db_url)
    except Exception as exc:  # the kill switch must never fail quietly, whatever broke
        _halt_not_recorded(settings, exc, cancel_open)
    expected = []
    if store is not None:
        try:
            if cancel_open:
                from reconciler.app.operations import in_flight_refs

                expected = in_flight_refs(store)
            # The halt is recorded first: that alone makes a running apply cancel its orders.
            store.halt(reason, who=holder_name(), cancel_open=cancel_open)
            recorded = True
        except Exception as exc:  # the kill switch must never fail quietly, whatever broke
            _halt_not_recorded(settings, exc, cancel_open)
    if recorded:
        click.echo(f"HALTED: {reason}. Every cycle refuses to trade until `reconcile resume`.")
        _notify_operator(
            settings,
            "halt",
            f"ib-reconciler: HALTED by {holder_name()}",
            f"Reason: {reason}\nEvery cycle refuses to trade until `reconcile resume`."
            + ("\nOpen orders are being cancelled (--cancel-open)." if cancel_open else ""),
        )
    if not cancel_open:
        if not recorded:
            sys.exit(EXIT_ERROR)
        return
    import asyncio

    from reconciler.app.gateway import gateway_settings
    from reconciler.app.operations import CycleError, cancel_open_orders

    client_id = settings.operator_client_id if explicit_client_id is None else explicit_client_id
    try:
        with gateway_settings(gateway, settings) as gw:
            result = asyncio.run(
                cancel_open_orders(
                    gw,
                    client_id=client_id,
                    expected_refs=expected,
                    timeout=wait_seconds,
                    global_cancel=global_cancel,
                )
            )
    except CycleError as exc:
        fail(
            ("halt recorded" if recorded else "HALT NOT RECORDED")
            + ", but the reconciler's open orders could not be read or cancelled: "
            f"{str(exc).rstrip('.')}. They may still be working"
            + (f" (in flight per the ledger: {', '.join(expected)})" if expected else "")
            + ": check them in TWS"
        )
    _echo_cancel_report(result)
    if result.still_working or result.error:
        working = ", ".join(o.render() for o in result.still_working) or "none seen"
        fail(
            ("halt recorded" if recorded else "HALT NOT RECORDED")
            + f", but {len(result.still_working)} order(s) are still working: "
            f"{working}"
            + (f" (the gateway failed: {result.error})" if result.error else "")
            + ". Cancel them in TWS, with their client id once its process has stopped, with "
            "IB_MASTER_CLIENT_ID set to the gateway's master client id, or rerun with "
            "--global-cancel (cancels every open order of the account, manual ones included)."
        )
    if not recorded:
        sys.exit(EXIT_ERROR)


def _echo_cancel_report(result) -> None:
    if not result.found:
        click.echo(
            f"No open orders of the reconciler at the gateway (client id {result.client_id})."
        )
        return
    for step in result.steps:
        click.echo(f"  {step}")
    click.echo(
        f"Cancelled {len(result.cancelled)} open order(s): {', '.join(result.cancelled) or '-'}"
    )
    if result.finished:
        click.echo(
            "Finished before the cancel took effect: "
            + ", ".join(f"{ref} ({status})" for ref, status in result.finished)
        )
    if result.still_working:
        click.echo(
            f"Still working: {len(result.still_working)} order(s): "
            + ", ".join(o.render() for o in result.still_working)
        )


def _halt_not_recorded(settings, exc: Exception, cancel_open: bool) -> None:
    from reconciler.app.cli.common import redact
    from reconciler.store import StoreUnavailable

    cause = (
        str(exc)
        if isinstance(exc, StoreUnavailable)
        else (
            f"store {redact(settings.effective_db_url)}: {type(exc).__name__}: "
            + (str(exc).strip().splitlines() or [""])[0]
        )
    )
    lines = [
        f"error: HALT NOT RECORDED: {cause}",
        "error: TRADING IS NOT HALTED: running and scheduled cycles read the halt from this "
        "store and will keep trading.",
        "error: to stop trading now: set `tradingState: HALTED` in the RiskPolicy in git (and "
        "make sure the checkout the service reads has it), or stop the service "
        "(systemctl stop reconcile.timer reconcile-daemon.service); then fix the store and "
        "run `reconcile halt` again.",
    ]
    if cancel_open:
        lines.append("error: cancelling this reconciler's open orders anyway, as asked.")
    for line in lines:
        click.echo(line, err=True)


@click.command("resume")
def resume_command():
    """Lift the out-of-band halt (git's RiskPolicy tradingState still applies)."""
    from reconciler.util.process import holder_name

    settings = load_settings_or_fail()
    store = open_store_or_fail(settings)
    if store.current_halt() is None:
        click.echo("Not halted; nothing to resume.")
        return
    halt = store.current_halt()
    store.resume(who=holder_name())
    click.echo("Resumed: the out-of-band halt is lifted.")
    _notify_operator(
        settings,
        "resume",
        f"ib-reconciler: resumed by {holder_name()}",
        f"The out-of-band halt ({getattr(halt, 'reason', '')}) is lifted; cycles may trade "
        "again (git's RiskPolicy tradingState still applies).",
    )


def _notify_operator(settings, kind: str, title: str, body: str) -> None:
    """Tell the notification URLs (if any) about an operator's action; a failure is said,
    never fatal: the action itself is done."""
    from reconciler.app.observing import Observer
    from reconciler.model.clock import SystemClock

    problem = Observer(settings, SystemClock()).event(kind, title, body)
    if problem:
        click.echo(f"warning: {kind} notification not delivered: {problem}", err=True)


@click.command("notify")
@click.option(
    "--event",
    "kind",
    required=True,
    type=click.Choice(NOTIFY_EVENTS),
    help="The event kind (RECONCILER_NOTIFY_EVENTS filters on it).",
)
@click.option("--title", default=None, help="Title (default: ib-reconciler: EVENT).")
@click.option("--message", required=True, help="The notification's text.")
def notify_command(kind, title, message):
    """Send one notification to RECONCILER_NOTIFY_URLS (apprise), e.g. from systemd's
    OnFailure= unit. Exit 0 delivered, filtered out by RECONCILER_NOTIFY_EVENTS, or no URL
    set (said on stderr); 1 not delivered."""
    from reconciler.app.observing import Observer
    from reconciler.model.clock import SystemClock

    settings = load_settings_or_fail()
    if not settings.notify_urls:
        click.echo("RECONCILER_NOTIFY_URLS is not set: nothing sent.", err=True)
        return
    if kind not in settings.notify_events:
        click.echo(f"{kind} is not in RECONCILER_NOTIFY_EVENTS: nothing sent.", err=True)
        return
    problem = Observer(settings, SystemClock()).event(
        kind, title or f"ib-reconciler: {kind}", message
    )
    if problem:
        fail(f"notification not delivered: {problem}")
    click.echo(f"notified: {kind}")


@click.command("unlock")
@click.argument("lock_id")
def unlock_command(lock_id):
    """Release a stale account lease (the one-writer-per-account lock) by its id.

    Not the inverse of `reconcile lock`, which pins instruments to contracts in the
    lockfile: this releases the lease a dead apply left on an account (ids in
    `reconcile status`). Only for a holder that is certainly gone.
    """
    settings = load_settings_or_fail()
    store = open_store_or_fail(settings)
    if not store.unlock(lock_id):
        fail(f"no lock with id {lock_id}")
    click.echo(f"Released lock {lock_id}.")


@click.group("audit")
def audit_group():
    """The append-only ledger."""


@click.command("verify")
def audit_verify_command():
    """Check the ledger's SHA-256 hash chain; names the first bad row. Exit 0 intact (an
    empty ledger included, with a warning), 1 not."""
    settings = load_settings_or_fail()
    store = open_store_or_fail(settings)
    result = store.verify_ledger()
    if result.ok and result.checked == 0:
        click.echo(f"Ledger EMPTY: no event recorded in {store.url}.")
        click.echo(
            "If this reconciler has traded before, the store was lost, replaced, or "
            "RECONCILER_DB_URL / RECONCILER_STATE_DIR point at another one: orders at the "
            "broker with an rc- orderRef are then unknown to it (the next apply lists them "
            "and refuses to trade while any is still working)."
        )
        return
    if result.ok:
        click.echo(f"Ledger intact: {result.checked} event(s), hash chain verified.")
        return
    click.echo(
        f"LEDGER BROKEN at seq {result.first_bad_seq}: {result.reason} "
        f"({result.checked} event(s) checked)",
        err=True,
    )
    sys.exit(EXIT_ERROR)


@click.command("plan")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=TABLE_FORMATS,
    default="text",
    show_default=True,
    help="text for a terminal, markdown for a pull-request comment, json for the artifact.",
)
def show_plan_command(planfile, fmt):
    """Show a saved plan (`reconcile plan --out PLANFILE`) again, like `terraform show`.

    The file's SHA-256 digest is checked first: an edited plan is refused (exit 3) as apply
    would refuse it. Connects to nothing and writes nothing. Exit 0 shown, 1 unreadable or
    not a plan, 3 edited.
    """
    from reconciler.app.cli.common import load_plan_file_or_fail
    from reconciler.render.plan import render_plan

    plan = load_plan_file_or_fail(planfile, consequence="the plan is not shown")
    if fmt == "markdown":
        from reconciler.model.settings import SettingsError, load_settings
        from reconciler.render.comment import CommentContext

        try:
            settings = load_settings()
        except SettingsError as exc:
            fail(str(exc))
        context = CommentContext(
            trading_mode=settings.trading_mode,
            orders_enabled=settings.orders_enabled,
            artifact=planfile,
        )
        click.echo(render_plan(plan, fmt, context=context), nl=False)
        return
    click.echo(render_plan(plan, fmt, color=fmt == "text" and use_color()), nl=False)


def register(cli: click.Group) -> None:
    for kind in ("orders", "fills", "cycles", "positions"):
        show_group.add_command(_show(kind))
    show_group.add_command(show_risk_command)
    show_group.add_command(show_plan_command)
    audit_group.add_command(audit_verify_command)
    for command in (
        status_command,
        show_group,
        health_command,
        halt_command,
        resume_command,
        notify_command,
        unlock_command,
        audit_group,
    ):
        cli.add_command(command)
