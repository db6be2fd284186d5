"""Offline IB Gateway simulator speaking the real TWS API socket protocol.

Public API: ``SimGateway`` (async context manager), ``run_in_thread`` (background thread),
``load_scenario``, ``ScenarioError``, ``DEMO_ACCOUNTS``. Importing this package is cheap: the
gateway, YAML and JSON Schema are imported only when first used. Layers: ``protocol`` ->
``requests``/``messages`` -> ``gateway`` (session, dispatch, handlers, server, thread) over
``book`` (records, accounts, orders, matching, persistence), ``market``, ``hours``,
``scenario``, ``faults``, ``journal``, ``state``. Nothing here imports an IB client library
or any reconciler module outside ``reconciler.sim`` (see ARCHITECTURE.md at the repository
root).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

DEMO_ACCOUNTS = ("DU0000001", "DU0000002")

__all__ = ["DEMO_ACCOUNTS", "ScenarioError", "SimGateway", "load_scenario", "run_in_thread"]

if TYPE_CHECKING:
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.thread import run_in_thread
    from reconciler.sim.scenario import ScenarioError, load_scenario

_LAZY = {
    "SimGateway": "reconciler.sim.gateway.server",
    "run_in_thread": "reconciler.sim.gateway.thread",
    "load_scenario": "reconciler.sim.scenario",
    "ScenarioError": "reconciler.sim.scenario",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'reconciler.sim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
