"""Which process holds something, and whether it still runs.

A holder is named `host:pid`. Only a process on this host can be known dead; a holder on
another host, or one we cannot parse, is never presumed dead. Must not kill or signal
anything (signal 0 only probes).
"""

from __future__ import annotations

import os
import socket


def holder_name() -> str:
    """This process, as `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """True unless `pid` certainly does not exist on this host (a process we may not signal
    still runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_is_dead(holder: str | None) -> bool:
    """True only when `holder` (host:pid) is a process on this host that no longer runs."""
    host, _, pid = (holder or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not process_alive(int(pid))
