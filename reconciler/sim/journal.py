"""Journal of every message the simulated gateway receives and sends.

Responsible for keeping entries in memory (``sim.journal``, a list of dicts) and, when a path
is given, appending them as JSON lines. Entry: ``{"t", "dir": "in"|"out", "client_id",
"msg_id", "fields"}``. Must not interpret messages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

_INTEGER = re.compile(r"-?[0-9]+")


class Journal(list):
    """A list of entries that also streams to a JSON-lines file."""

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path else None
        self._file = self.path.open("a", encoding="utf-8") if self.path else None

    def record(
        self, direction: str, client_id: int | None, fields: list[str], at: dt.datetime
    ) -> None:
        msg_id = fields[0] if fields else None
        entry = {
            "t": at.isoformat(),
            "dir": direction,
            "client_id": client_id,
            # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
            "msg_id": int(msg_id) if msg_id and _INTEGER.fullmatch(msg_id) else msg_id,
            "fields": list(fields),
        }
        self.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def messages(
        self, direction: str | None = None, msg_id: int | None = None, client_id: int | None = None
    ) -> list[dict]:
        """Entries filtered by direction, message id and client id (None: any)."""
        return [
            e
            for e in self
            if (direction is None or e["dir"] == direction)
            and (msg_id is None or e["msg_id"] == msg_id)
            and (client_id is None or e["client_id"] == client_id)
        ]
