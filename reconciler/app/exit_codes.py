"""The process exit codes of `reconcile` (a public contract: README's command table).

Responsible for the codes and for mapping a finished cycle's status to one, shared by the
CLI commands and `run --once` so that automation reads the same number for the same outcome.
Must not import anything heavy: every command imports it.

0  completed: applied, nothing to do, in sync, dry run, drift reported (report-only),
   outside the trading window (planned and reported, nothing sent)
1  error: bad input, gateway or store unusable, cycle failed, not approved
2  `plan --detailed-exitcode`: orders to send
3  refused before anything was sent: a gate, a halt, a stale plan, a held lock
4  out of band and this run could not close it: orders were planned but none filled
   (all rejected, cancelled, not sent because of a halt), or no allowed order closes the
   drift (denied, clipped to nothing, restricted)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3
EXIT_DRIFT_REMAINS = 4

_BY_STATUS = {
    "ok": EXIT_OK,
    "partial": EXIT_OK,
    "dry-run": EXIT_OK,
    "outside-window": EXIT_OK,
    "none-filled": EXIT_DRIFT_REMAINS,
    "blocked": EXIT_DRIFT_REMAINS,
    "refused": EXIT_REFUSED,
}


def exit_code_for_status(status: str | None) -> int:
    """The exit code for a cycle's recorded status; anything unexpected is an error."""
    return _BY_STATUS.get(status or "", EXIT_ERROR)
