"""Retention of cycle report files: the RECONCILER_REPORT_RETENTION rule.

Responsible for choosing and removing the report files that fall outside the rule (older than
N days, or beyond the newest N cycles), judged by the cycle start time and id in each file's
name. Only files whose name is exactly one this tool writes (`20260107T170000-cycle12.json`
or `.md`, see `record.report_paths`) are ever considered: anything else in the directory
(notes, other tools' files, directories, symlinks) is left alone. Must not decide where
reports go, write them, or touch the store (the store keeps every cycle's report).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path

from reconciler.model.settings import ReportRetention

REPORT_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6})-cycle(?P<cycle>\d+)\.(?:json|md)$")


def _report_key(path: Path) -> tuple[dt.datetime, int] | None:
    match = REPORT_NAME.match(path.name)
    if match is None:
        return None
    try:
        started = dt.datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return started, int(match["cycle"])


def reports_to_remove(
    paths: Iterable[Path], retention: ReportRetention, now: dt.datetime
) -> list[Path]:
    """Of `paths`, the report files the rule removes (a cycle's JSON and Markdown together)."""
    cycles: dict[tuple[dt.datetime, int], list[Path]] = {}
    for path in paths:
        key = _report_key(path)
        if key is not None:
            cycles.setdefault(key, []).append(path)
    newest_first = sorted(cycles, reverse=True)
    if retention.count is not None:
        dropped = newest_first[retention.count :]
    else:
        oldest_kept = now - dt.timedelta(days=retention.days or 0)
        dropped = [key for key in newest_first if key[0] < oldest_kept]
    return sorted(p for key in dropped for p in cycles[key])


def prune_reports(directory: Path, retention: ReportRetention, now: dt.datetime) -> list[Path]:
    """Remove the report files in `directory` the rule drops; returns what was removed.

    Regular files only (a symlink or directory with a report's name is not ours to remove);
    a file that disappeared meanwhile (another process pruning) is not an error.
    """
    candidates = [p for p in directory.iterdir() if p.is_file() and not p.is_symlink()]
    removed = []
    for path in reports_to_remove(candidates, retention, now):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
