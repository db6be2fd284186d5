"""Fixtures of the read-only surfaces' tests (serve, dashboard, mcp, export): ONE real apply
per test session (per xdist worker) on a simulator running in this process, and the status
API served by uvicorn on an ephemeral port over that store, opened read-only.

The apply runs the real CLI in a subprocess against the in-process simulator (persisted to a
state file, so it stays up for the MCP `plan` tool and the /health gateway check). A risk
override clips two orders, so the store also holds risk clips and drift that remains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_helpers import ServedApp, settings_for

from reconciler.sim import run_in_thread

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "desired_state"
RISK_ENV = {
    "ORDERS_ENABLED": "true",
    "EXEC_RISK_ENABLED": "true",
    "EXEC_RISK_MAX_ORDER_NOTIONAL": "15000",
}


def base_env(workdir: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "RECONCILER_STATE_DIR": str(workdir / ".reconciler"),
        "RECONCILER_REPORTS_DIR": str(workdir / "reports"),
        "IB_CONNECT_TIMEOUT": "5",
        "IB_CLIENT_ID": "17",
        "PYTHONWARNINGS": "ignore",
    }


@dataclass(frozen=True)
class Applied:
    workdir: Path
    desired_dir: Path
    env: dict[str, str]  # for `reconcile` subprocesses reading this store
    db_url: str
    sim: object
    apply_stdout: str

    def reconcile(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90):
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            timeout=timeout,
        )
        assert b"Traceback" not in result.stderr, result.stderr.decode()
        return result


@pytest.fixture(scope="session")
def applied(tmp_path_factory) -> Iterator[Applied]:
    workdir = tmp_path_factory.mktemp("serve-store")
    desired = workdir / "desired_state"
    shutil.copytree(EXAMPLE, desired)
    with run_in_thread(state_file=str(workdir / "sim-state.json")) as sim:
        env = {
            **base_env(workdir),
            **RISK_ENV,
            "IB_GATEWAY_HOST": sim.host,
            "IB_GATEWAY_PORT": str(sim.port),
        }
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", "apply", "--dir", str(desired), "--auto-approve"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Error handling fields" not in result.stderr
        yield Applied(
            workdir=workdir,
            desired_dir=desired,
            env=env,
            db_url=f"sqlite:///{workdir / '.reconciler' / 'reconciler.db'}",
            sim=sim,
            apply_stdout=result.stdout,
        )


@pytest.fixture(scope="module")
def readonly_store(applied):
    from reconciler.store import open_store_readonly

    store = open_store_readonly(applied.db_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def base_url(applied, readonly_store) -> Iterator[str]:
    from reconciler.app.serve.api import create_app

    app = create_app(readonly_store, settings=settings_for(applied))
    with ServedApp(app) as url:
        yield url
