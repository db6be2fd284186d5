"""Report retention on a real directory with an injected clock: the rule removes the report
files of cycles outside it, a cycle's JSON and Markdown together, and nothing else."""

import datetime as dt

import pytest

from reconciler.cycle.retention import prune_reports, reports_to_remove
from reconciler.model.settings import ReportRetention, SettingsError, parse_retention

NOW = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
# Files a person or another tool put next to the reports, named almost like ours.
OTHERS = (
    "README.md",
    "20260101T000000-cycle1.json.bak",
    "20260101T000000-cycle1.txt",
    "notes-20260101T000000-cycle1.md",
    "20260101T000000-cycleX.md",
    ".20260101T000000-cycle1.json.abc.tmp",
)


def _reports(directory, days_ago: list[int]) -> list[str]:
    """One report (JSON + Markdown) per cycle, cycle i started `days_ago[i]` days before NOW."""
    names = []
    for cycle, days in enumerate(days_ago, start=1):
        stamp = (NOW - dt.timedelta(days=days, minutes=cycle)).strftime("%Y%m%dT%H%M%S")
        for suffix in (".json", ".md"):
            name = f"{stamp}-cycle{cycle}{suffix}"
            (directory / name).write_text("{}")
            names.append(name)
    return names


@pytest.fixture
def reports(tmp_path):
    directory = tmp_path / "reports"
    directory.mkdir()
    for name in OTHERS:
        (directory / name).write_text("not ours")
    (directory / "20260101T000000-cycle99.md").mkdir()  # a directory with a report's name
    return directory


def test_retention_by_days_removes_older_reports_and_keeps_everything_else(reports):
    names = _reports(reports, [40, 31, 29, 1, 0])
    removed = prune_reports(reports, ReportRetention(days=30), NOW)
    assert sorted(p.name for p in removed) == sorted(names[:4])  # cycles 1 and 2, both files
    left = {p.name for p in reports.iterdir()}
    assert left == set(names[4:]) | set(OTHERS) | {"20260101T000000-cycle99.md"}


def test_retention_by_count_keeps_the_newest_cycles_whatever_their_age(reports):
    names = _reports(reports, [400, 300, 200, 100, 0])
    removed = prune_reports(reports, ReportRetention(count=2), NOW)
    assert sorted(p.name for p in removed) == sorted(names[:6])
    assert {p.name for p in reports.iterdir()} >= set(names[6:]) | set(OTHERS)


def test_a_symlink_with_a_reports_name_is_not_removed(reports, tmp_path):
    target = tmp_path / "precious.json"
    target.write_text("keep me")
    (reports / "20200101T000000-cycle1.json").symlink_to(target)
    assert prune_reports(reports, ReportRetention(count=1), NOW) == []
    assert target.read_text() == "keep me"


def test_within_the_rule_nothing_is_removed(reports):
    _reports(reports, [3, 2, 1])
    assert prune_reports(reports, ReportRetention(days=30), NOW) == []
    files = [p for p in reports.iterdir() if p.is_file()]
    assert reports_to_remove(files, ReportRetention(count=3), NOW) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("30d", ReportRetention(days=30)), (" 500 ", ReportRetention(count=500)), ("", None)],
)
def test_retention_setting_reads_days_or_a_count(raw, expected):
    assert parse_retention("RECONCILER_REPORT_RETENTION", raw) == expected


@pytest.mark.parametrize("raw", ["0", "0d", "30days", "-5", "1w", "d"])
def test_a_retention_setting_that_is_neither_names_the_variable(raw):
    with pytest.raises(SettingsError, match="RECONCILER_REPORT_RETENTION"):
        parse_retention("RECONCILER_REPORT_RETENTION", raw)
