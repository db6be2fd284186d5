"""Fixtures of the fault catalogue: one simulator with a scenario's faults, the `reconcile`
CLI as real subprocesses against it, and a store (SQLite in tmp_path, or a uniquely named
PostgreSQL database), all torn down after the test.

Reuses the end-to-end helpers of tests/integration (apply_helpers, library_cli); every test
here is marked `integration` by tests/conftest.py. Must not sleep as synchronisation.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from apply_helpers import scenario, store_url, write_desired_state
from invariants import assert_safe
from library_cli import LibraryCli

from reconciler.sim import run_in_thread

CLIENT_ID = 71


@dataclass
class FaultCli(LibraryCli):
    """The CLI of library_cli with extra environment (e.g. TZ, a short request timeout)."""

    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, client_id: int | None = None) -> dict[str, str]:
        return {**super().env(client_id), **self.extra_env}

    def finish(self, proc, timeout: float = 60.0):
        """The process's result; whatever the fault, a `reconcile` that ends by itself ends
        with a message, never a traceback."""
        result = super().finish(proc, timeout)
        assert "Traceback (most recent call last)" not in result.stderr, result.explain()
        return result


@dataclass
class World:
    """One scenario: the simulator (`sim`), the CLI (`cli`) and its store URL."""

    sim: object
    cli: FaultCli
    tmp_path: Path

    @property
    def db_url(self) -> str:
        return self.cli.db_url

    def safe(self, **expect):
        """The shared invariants (tests/faults/invariants.py) over ledger and simulator."""
        return assert_safe(self.db_url, self.sim, **expect)


@pytest.fixture
def world(tmp_path):
    """`world(spec, targets, ttl=..., store=..., state_file=...)` starts a simulator running
    `spec` (see apply_helpers.scenario) and a CLI whose desired state holds `targets`."""
    with contextlib.ExitStack() as stack:

        def start(
            spec: dict,
            targets: dict[str, float],
            *,
            ttl: str = "30s",
            store: str = "sqlite",
            client_id: int = CLIENT_ID,
            library: str = "ib_async",
            **sim_kwargs,
        ) -> World:
            sim = stack.enter_context(run_in_thread(spec, **sim_kwargs))
            desired = write_desired_state(tmp_path / "desired_state", targets, ttl=ttl)
            cli = FaultCli(
                tmp_path,
                f"{sim.host}:{sim.port}",
                store_url(store, tmp_path, stack),
                desired,
                client_id=client_id,
                library=library,
            )
            stack.callback(cli.close)
            return World(sim, cli, tmp_path)

        yield start


@pytest.fixture
def faulty():
    """`faulty(holdings, faults, closed=..., **market)`: a one-account scenario with faults."""

    def build(
        holdings: dict[str, float],
        faults: dict | None = None,
        *,
        closed=(),
        cash: float = 100_000.0,
        **extra,
    ):
        spec = scenario(holdings, closed=closed, cash=cash)
        if faults:
            spec["faults"] = faults
        for key, value in extra.items():
            if key in ("liquidity", "fillInterval", "hours", "outsideHours"):
                spec["market"][key] = value
            else:
                spec[key] = value
        return spec

    return build
