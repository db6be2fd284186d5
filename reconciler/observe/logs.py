"""Log configuration of the `reconcile` process: structured lines, human or JSON.

Responsible for choosing the format (`--log-format`, RECONCILER_LOG_FORMAT, else JSON when
the log stream is not a terminal and the process runs under systemd, else human) and the
level (RECONCILER_LOG_LEVEL; by default INFO, or WARNING for a command whose human progress
lines already tell the story, see `default_level`), and for installing one stderr handler whose
`structlog.stdlib.ProcessorFormatter` renders both our structured events
(`reconciler.util.logs.get_logger`) and the client libraries' stdlib records the same way,
each with a UTC timestamp, its level, the logger name and the cycle's context variables.
Must not decide what is logged, and must not write to stdout (command output lives there).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

FORMATS = ("human", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LEVEL = "INFO"
# Commands that log at INFO by default in human format too: the daemon has no progress lines.
INFO_COMMANDS = ("run",)
# Libraries that narrate routine work at INFO (the IB clients every connection, alembic every
# store opening, APScheduler every job run): they speak at our level only when DEBUG is asked
# for; their warnings and errors always come through.
QUIET_LOGGERS = ("ib_async", "ib_insync", "alembic", "apscheduler")
# The keys every line starts with, in this order; the event's own fields follow.
FIRST_KEYS = ("timestamp", "level", "event", "logger", "cycle_id", "account", "order_ref")


class LogConfigError(ValueError):
    """RECONCILER_LOG_LEVEL or the log format has a value that is not one of the choices."""


def under_systemd(env: Mapping[str, str]) -> bool:
    """systemd sets INVOCATION_ID for every unit it starts, JOURNAL_STREAM when output goes
    to the journal."""
    return bool(env.get("INVOCATION_ID") or env.get("JOURNAL_STREAM"))


def choose_format(
    flag: str | None, env: Mapping[str, str] | None = None, stream: IO[str] | None = None
) -> str:
    """`--log-format` wins, then RECONCILER_LOG_FORMAT; unset: JSON when `stream` (stderr)
    is not a terminal and the process runs under systemd, else human."""
    env = os.environ if env is None else env
    given = (("--log-format", flag), ("RECONCILER_LOG_FORMAT", env.get("RECONCILER_LOG_FORMAT")))
    for source, raw in given:
        if raw and raw.strip():
            value = raw.strip().lower()
            if value not in FORMATS:
                raise LogConfigError(f"{source}={raw!r}: expected one of {', '.join(FORMATS)}")
            return value
    stream = sys.stderr if stream is None else stream
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    return "json" if not interactive and under_systemd(env) else "human"


def default_level(fmt: str, command: str | None) -> str:
    """INFO for the daemon (`run`) and for JSON logs; WARNING for the other commands in
    human format, whose progress lines (`send ...`, `FILLED ...`) already narrate each order:
    INFO lines would say everything twice."""
    return DEFAULT_LEVEL if fmt == "json" or command in INFO_COMMANDS else "WARNING"


def choose_level(env: Mapping[str, str] | None = None, default: str = DEFAULT_LEVEL) -> int:
    """RECONCILER_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR; else `default`) as a logging level."""
    env = os.environ if env is None else env
    raw = (env.get("RECONCILER_LOG_LEVEL") or "").strip()
    name = raw.upper() or default
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise LogConfigError(f"RECONCILER_LOG_LEVEL={raw!r}: expected one of {', '.join(LEVELS)}")
    return logging.getLevelName(name)


def _tidy(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Internal keys out, empty fields (None) out, the common keys first."""
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    first = {k: event.pop(k) for k in FIRST_KEYS if event.get(k) is not None}
    rest = {k: v for k, v in event.items() if v is not None}
    return {**first, **rest}


def formatter(fmt: str, *, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the one handler: JSON lines or human lines, same fields."""
    import structlog

    added: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False, default=str)
        final = [structlog.processors.format_exc_info, _tidy, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=24, sort_keys=False)
        final = [_tidy, renderer]
    return structlog.stdlib.ProcessorFormatter(
        # Our events arrive with the cycle's context merged already; stdlib records get it here.
        foreign_pre_chain=[structlog.contextvars.merge_contextvars],
        processors=[*added, *final],
    )


class _LazyFormatter(logging.Formatter):
    """`formatter(fmt)` built at the first record: structlog (~70 ms of imports) is loaded
    only by a process that logs something."""

    def __init__(self, fmt: str, colors: bool) -> None:
        super().__init__()
        self._args = (fmt, colors)
        self._real: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._real is None:
            fmt, colors = self._args
            self._real = formatter(fmt, colors=colors)
        return self._real.format(record)


def configure(
    fmt: str,
    level: int,
    *,
    stream: IO[str] | None = None,
    filters: tuple[Any, ...] = (),
) -> logging.Handler:
    """Install the one handler on the root logger (replacing earlier ones); returns it."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    colors = fmt == "human" and bool(getattr(stream, "isatty", lambda: False)())
    handler.setFormatter(_LazyFormatter(fmt, colors))
    handler.reconciler_format = fmt  # type: ignore[attr-defined]  # read by the app
    for f in filters:
        handler.addFilter(f)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        client_level = logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING)
        logging.getLogger(name).setLevel(client_level)
    return handler
