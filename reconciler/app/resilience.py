"""How the daemon waits for the gateway and how long in-flight orders may answer on SIGTERM.

Responsible for `Resilience` (RECONCILER_RECONNECT_* and RECONCILER_SHUTDOWN_GRACE_SECONDS,
read and checked the same way for the daemon and the one-shot commands) and
`SchedulerError`, which the scheduler raises when it cannot start and this module when a
value is refused. Kept apart from `reconciler.app.scheduler` so that `apply` reads its SIGTERM
grace before connecting without importing the scheduler. Must not schedule or connect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SchedulerError(Exception):
    """The scheduler cannot start (no Schedule, invalid desired state at start)."""


@dataclass(frozen=True)
class Resilience:
    """How the daemon waits for the gateway and how long it lets in-flight orders answer."""

    initial_seconds: float = 1.0
    max_seconds: float = 60.0
    jitter_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Resilience:
        env = os.environ if env is None else env
        names = {
            "initial_seconds": "RECONCILER_RECONNECT_INITIAL_SECONDS",
            "max_seconds": "RECONCILER_RECONNECT_MAX_SECONDS",
            "jitter_seconds": "RECONCILER_RECONNECT_JITTER_SECONDS",
            "shutdown_grace_seconds": "RECONCILER_SHUTDOWN_GRACE_SECONDS",
        }
        values: dict[str, float] = {}
        for field_name, var in names.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise SchedulerError(f"{var}={raw!r}: expected a number of seconds") from None
            if not value >= 0 or value == float("inf"):
                raise SchedulerError(f"{var}={raw!r}: expected a finite number >= 0")
            values[field_name] = value
        made = cls(**values)
        if made.max_seconds < made.initial_seconds:
            raise SchedulerError(
                f"RECONCILER_RECONNECT_MAX_SECONDS ({made.max_seconds:g}) is below "
                f"RECONCILER_RECONNECT_INITIAL_SECONDS ({made.initial_seconds:g})"
            )
        return made
