"""`reconcile demo`: the whole loop on the built-in simulator, end to end.

Responsible for wiring an embedded gateway simulator (demo scenario), the example desired
state, a throw-away store and report directory, and running plan -> apply -> plan again.
Orders go only to the embedded simulator, never to a configured gateway. Must not print
directly (output goes through the `echo` callback) or touch the operator's own store.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reconciler.model.clock import SystemClock
from reconciler.model.settings import Settings


class DemoError(Exception):
    """The demo could not show convergence; the message says what happened."""


def example_directory() -> Path:
    """`desired_state/` in the current directory, else the example shipped in the package."""
    cwd = Path("desired_state")
    shipped = Path(__file__).resolve().parents[1] / "example"
    for candidate in (cwd, shipped):
        if candidate.is_dir():
            return candidate
    raise DemoError(
        "no desired_state/ directory found (run from the repository root or pass --dir)"
    )


def run_demo(directory: str | None, *, echo: Callable[[str], None]) -> None:
    from reconciler.cycle import CycleError, Refused, apply_cycle, plan_cycle
    from reconciler.desired import load_desired_state
    from reconciler.model.diagnostics import DiagnosticsError, render_text
    from reconciler.render.plan import render_plan_text
    from reconciler.sim import run_in_thread
    from reconciler.store import open_store

    path = Path(directory) if directory else example_directory()
    try:
        desired = load_desired_state(path)
    except DiagnosticsError as exc:
        raise DemoError(f"{path} is invalid:\n{render_text(exc.diagnostics)}") from exc
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-demo-"))
    clock = SystemClock()
    store = open_store(f"sqlite:///{workdir / 'demo.db'}", clock=clock)
    echo(f"Demo: embedded IB Gateway simulator, desired state {path}, work files in {workdir}")
    with run_in_thread(journal_path=str(workdir / "sim-journal.jsonl")) as sim:
        settings = Settings(
            gateway_host=sim.host,
            gateway_port=sim.port,
            client_id=17,
            trading_mode="paper",
            orders_enabled=True,  # safe: the only gateway here is the embedded simulator
            state_dir=str(workdir),
            reports_dir=str(workdir / "reports"),
        )
        try:
            echo("\n== 1. reconcile plan ==")
            first = asyncio.run(plan_cycle(desired, settings, clock=clock, store=store))
            echo(render_plan_text(first.plan).rstrip())
            echo("\n== 2. reconcile apply --auto-approve ==")
            applied = asyncio.run(
                apply_cycle(
                    desired,
                    settings,
                    clock=clock,
                    store=store,
                    approve=lambda _p: True,
                    progress=echo,
                    reports_dir=settings.reports_dir,
                )
            )
            report = applied.report
            files = report.files or ("-", "-")
            echo(f"Cycle {report.cycle_id}: {report.result}; report {files[1]}")
            echo("\n== 3. reconcile plan (again) ==")
            second = asyncio.run(plan_cycle(desired, replace(settings), clock=clock, store=store))
            echo(render_plan_text(second.plan).rstrip())
        except (CycleError, Refused) as exc:
            raise DemoError(str(exc)) from exc
    from reconciler.render.plan import unresolved_drift

    if second.plan.orders or unresolved_drift(second.plan):
        raise DemoError(
            f"not converged: the second plan has {len(second.plan.orders)} order(s) and "
            f"{len(unresolved_drift(second.plan))} instrument(s) outside their band"
        )
    verify = store.verify_ledger()
    echo(
        f"\nLedger: {verify.checked} event(s), hash chain {'verified' if verify.ok else 'BROKEN'}."
    )
    echo("Converged: every managed instrument is inside its band. Demo complete.")
