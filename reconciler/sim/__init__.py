"""Offline IB Gateway simulator speaking the real TWS API socket protocol.

Public API: ``SimGateway`` (async context manager), ``run_in_thread`` (background thread),
``load_scenario``, ``DEMO_ACCOUNTS``. Importing this package is cheap: the server, YAML and
JSON Schema are imported only when first used. Nothing here imports an IB client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

DEMO_ACCOUNTS = ("DU0000001", "DU0000002")

__all__ = ["DEMO_ACCOUNTS", "ScenarioError", "SimGateway", "load_scenario", "run_in_thread"]

if TYPE_CHECKING:
    from reconciler.sim.scenario import ScenarioError, load_scenario
    from reconciler.sim.server import SimGateway, run_in_thread

_LAZY = {
    "SimGateway": "reconciler.sim.server",
    "run_in_thread": "reconciler.sim.server",
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
