"""Helpers for end-to-end tests of the `reconcile` command (shared by the cli tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "desired_state"


@dataclass
class Cli:
    """Runs `python -m reconciler ...` with a private state directory and store."""

    workdir: Path
    gateway: str
    env: dict[str, str]

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 90,
        gateway: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess:
        full_env = {**self.env, **(env or {})}
        command = [sys.executable, "-m", "reconciler", *args]
        if gateway and args and args[0] in ("plan", "apply", "lock", "health", "run", "halt"):
            command += ["--gateway", self.gateway]
        result = subprocess.run(
            command,
            cwd=self.workdir,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        # The client library must decode everything the simulator sends.
        assert "Error handling fields" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the command in the background (for tests that kill or race it)."""
        command = [sys.executable, "-m", "reconciler", *args, "--gateway", self.gateway]
        return subprocess.Popen(
            command,
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def base_env(workdir: Path) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    }
    return {
        **keep,
        "RECONCILER_STATE_DIR": str(workdir / ".reconciler"),
        "RECONCILER_REPORTS_DIR": str(workdir / "reports"),
        "IB_CONNECT_TIMEOUT": "5",
        "IB_CLIENT_ID": "17",
        "PYTHONWARNINGS": "ignore",
    }


def placed_order_refs(sim) -> list[str]:
    """orderRefs of every placeOrder (incoming message 3) the simulator received."""
    refs = []
    for entry in sim.journal.messages("in", 3):
        refs += [f for f in entry["fields"] if f.startswith("rc-")]
    return refs
