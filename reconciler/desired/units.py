"""Units of the desired-state language: percentages, basis points and durations.

Responsible for turning the operator's spellings (`55%`, `0.55`, `50bps`, `120s`, `1h30m`)
into the model's units (fractions and seconds), and for nothing else. Every parser raises
`ValueError` with a message an operator can act on; callers turn that into a diagnostic.
Must not know about YAML, files or diagnostics.
"""

from __future__ import annotations

import math
import re

_PERCENT = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)%$")
_BPS = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)bps$")
_DURATION_PART = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)")
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_percent(text: object) -> float:
    """`55%` -> 0.55. Only the percent spelling is accepted here (no bare numbers)."""
    if not isinstance(text, str) or not (match := _PERCENT.match(text)):
        raise ValueError(f"{text!r} is not a percentage; write it like 5% or 12.5%")
    return _finite(float(match["number"]), text) / 100.0


def parse_weight(value: object) -> float:
    """A target weight: `55%` or a bare fraction `0.55`. A bare number above 1 is refused."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a weight; write it like 55% or 0.55")
    if isinstance(value, int | float):
        fraction = _finite(float(value), str(value))
        if fraction > 1:
            raise ValueError(
                f"weight {value} is a bare number above 1, but a bare weight is a fraction "
                f"of capital (0.55 = 55%); did you mean {value}%?"
            )
        if fraction < 0:
            raise ValueError(f"weight {value} is negative")
        return fraction
    return parse_percent(value)


def parse_spread(value: object) -> float:
    """A spread limit as a fraction of mid: `1%` -> 0.01, `50bps` -> 0.005."""
    if isinstance(value, str) and (match := _BPS.match(value)):
        return _finite(float(match["number"]), value) / 10_000.0
    if isinstance(value, str) and _PERCENT.match(value):
        return parse_percent(value)
    raise ValueError(f"{value!r} is not a spread; write it like 1% or 50bps")


def parse_duration(text: object) -> float:
    """`120s` -> 120.0, `2m` -> 120.0, `1h30m` -> 5400.0, `250ms` -> 0.25 (seconds)."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(
            f"{text!r} is not a duration; write it with a unit like 30s, 5m, 2h or 1h30m"
        )
    seconds = sum(
        float(part["number"]) * _SECONDS_PER_UNIT[part["unit"]]
        for part in _DURATION_PART.finditer(text)
    )
    return _finite(seconds, text)


def format_duration(seconds: float) -> str:
    """The inverse of `parse_duration` for display: 5400 -> `1h30m`, 0.25 -> `250ms`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
