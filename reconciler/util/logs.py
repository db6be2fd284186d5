"""Loggers for the core: structured events routed through the standard `logging` module.

Responsible for `get_logger(name)`: a structlog logger whose events (an event name plus
key=value fields, with the cycle's `cycle_id`/`account` merged from structlog's context
variables) are handed to the stdlib logger of that name. Where and how they are written is
decided once by the application (`reconciler.observe.logs`); without that configuration the
stdlib defaults apply (warnings and errors to stderr, nothing on stdout), so importing the
core as a library never prints. Must not configure handlers, formats or levels.
"""

from __future__ import annotations

import logging
from typing import Any


class _Logger:
    """Builds the structlog logger on first use: importing structlog costs ~70 ms, which
    commands that never log (`reconcile validate` on a clean tree) must not pay."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.wrap_logger(
                logging.getLogger(self._name),
                # The event dict is handed to the stdlib record as is (`record.msg`); the
                # application's `structlog.stdlib.ProcessorFormatter` renders it.
                processors=[
                    structlog.stdlib.filter_by_level,
                    structlog.contextvars.merge_contextvars,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
                ],
                wrapper_class=structlog.stdlib.BoundLogger,
                cache_logger_on_first_use=False,
            )
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """A structured logger writing to the stdlib logger `name` (`log.info("event", k=v)`)."""
    return _Logger(name)


def bind_cycle(**values: Any) -> Any:
    """Bind fields (`cycle_id`, `account`) to every log line of the current context until
    the returned context manager exits (structlog context variables: asyncio tasks started
    inside inherit them)."""
    import structlog

    return structlog.contextvars.bound_contextvars(**values)
