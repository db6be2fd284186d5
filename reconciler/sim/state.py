"""Persistence of the simulated broker to a JSON state file.

Responsible for loading the file at start-up, writing it atomically (temporary file, fsync,
os.replace) after changes, and holding an exclusive lock so two simulators never share one
state file at the same time (sequential processes do, and see one consistent broker). Must
not decide what the state contains: that is ``book.persistence`` (see ARCHITECTURE.md at the
repository root).
"""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock, Timeout

from reconciler.util.files import atomic_write


class StateFileError(Exception):
    """The state file cannot be used (locked by another simulator, unreadable, wrong format)."""


class StateFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")
        self._last_written: str | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout as exc:
            raise StateFileError(
                f"{self.path}: in use by another running simulator (lock {self._lock.lock_file})"
            ) from exc

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            text = self.path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateFileError(f"{self.path}: not a simulator state file ({exc})") from exc
        if not isinstance(data, dict) or "accounts" not in data:
            raise StateFileError(f"{self.path}: not a simulator state file (no accounts)")
        self._last_written = text
        return data

    def write(self, state: dict) -> bool:
        """Write if the content changed; returns whether a write happened."""
        text = json.dumps(state, indent=1, sort_keys=True)
        if text == self._last_written:
            return False
        atomic_write(self.path, text)
        self._last_written = text
        return True
