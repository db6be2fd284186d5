"""The systemd units in systemd/ load cleanly, stay sandboxed, and fire on New York market days.

Responsible for checking the unit files as shipped with `systemd-analyze` (verify, security
--offline, calendar) and for the settings the README's production install relies on (paths,
exit-status handling, shared sandbox). Must not start, enable or install any unit, and needs no
running systemd: the checks that need `systemd-analyze` skip, saying so, where it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

UNITS = Path(__file__).resolve().parents[3] / "systemd"
SERVICES = ("reconcile.service", "reconcile-daemon.service", "reconcile-notify@.service")
RECONCILE_SERVICES = ("reconcile.service", "reconcile-daemon.service")
# Exists only on a production host (README: /opt/reconciler + virtual environment).
PRODUCTION_EXECUTABLE = "/opt/reconciler/.venv/bin/reconcile"
MAX_EXPOSURE = 2.0
NEW_YORK = ZoneInfo("America/New_York")

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd); "
    "the unit files cannot be verified without it",
)


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as ordered (key, value) lists; continuation lines joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {key} outside a section"
        current.append((key.strip(), value.strip()))
    return sections


def values(path: Path, section: str, key: str) -> list[str]:
    return [v for k, v in parse_unit(path).get(section, []) if k == key]


def value(path: Path, section: str, key: str) -> str:
    found = values(path, section, key)
    assert len(found) == 1, f"{path.name}: expected one {key}= in [{section}], found {found}"
    return found[0]


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    # TZ=UTC: `calendar` prints elapse times in the local zone, parsed below as UTC.
    return subprocess.run(
        [ANALYZE or "systemd-analyze", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TZ": "UTC", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )


def verify(paths: list[Path]) -> tuple[int, list[str]]:
    result = analyze("verify", "--man=no", *map(str, paths))
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    return result.returncode, lines


# --- systemd-analyze verify ---------------------------------------------------------------


@needs_analyze
def test_units_verify_without_a_single_warning_when_the_production_executable_exists(
    tmp_path: Path,
):
    # verify exits 0 on unknown keys, so any printed line counts as a failure here.
    true = shutil.which("true")
    assert true, "the 'true' executable stands in for the production venv's reconcile"
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(PRODUCTION_EXECUTABLE, true))
    code, lines = verify(sorted(tmp_path.iterdir()))
    assert lines == []
    assert code == 0


@needs_analyze
def test_units_as_shipped_verify_with_only_the_production_executable_missing():
    _, lines = verify(sorted(UNITS.iterdir()))
    allowed = re.compile(rf"Command {re.escape(PRODUCTION_EXECUTABLE)} is not executable")
    assert [ln for ln in lines if not allowed.search(ln)] == []


@needs_analyze
def test_verify_reports_a_misspelt_key_so_the_checks_above_can_fail(tmp_path: Path):
    unit = tmp_path / "reconcile.service"
    unit.write_text((UNITS / "reconcile.service").read_text() + "ProtectClok=true\n")
    _, lines = verify([unit])
    assert any("Unknown key 'ProtectClok'" in ln for ln in lines), lines


# --- systemd-analyze security --offline ---------------------------------------------------


def exposure(unit: Path) -> tuple[float, str]:
    result = analyze("security", "--offline=true", str(unit))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no overall exposure in:\n{result.stdout}{result.stderr}"
    return float(match.group(1)), result.stdout


@needs_analyze
@pytest.mark.parametrize("name", SERVICES)
def test_service_offline_exposure_is_at_most_2(name: str):
    level, table = exposure(UNITS / name)
    open_items = "\n".join(ln for ln in table.splitlines() if ln.startswith("✗"))
    assert level <= MAX_EXPOSURE, f"{name}: exposure {level}\n{open_items}"


@needs_analyze
def test_security_rates_an_unsandboxed_service_as_exposed_so_the_check_can_fail(tmp_path):
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/bin/true\nUser=nobody\n")
    level, _ = exposure(bare)
    assert level > MAX_EXPOSURE


# --- reconcile.timer ----------------------------------------------------------------------

TIMER = UNITS / "reconcile.timer"
# The slots the timer's comment promises: 09:35, 09:50, then every 15 minutes 10:05..15:50.
SLOTS = [time(9, 35), time(9, 50)] + [time(h, m) for h in range(10, 16) for m in (5, 20, 35, 50)]


def elapses(expression: str, base: str, iterations: int) -> list[datetime]:
    result = analyze("calendar", f"--base-time={base}", f"--iterations={iterations}", expression)
    assert result.returncode == 0, result.stderr
    stamps = re.findall(
        r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout
    )
    assert len(stamps) == iterations, result.stdout
    return [datetime.fromisoformat(s + "+00:00") for s in stamps]


def test_timer_is_persistent_with_a_randomized_delay_well_below_its_period():
    assert value(TIMER, "Timer", "Persistent") == "true"
    delay = re.fullmatch(r"(\d+)(s|min)", value(TIMER, "Timer", "RandomizedDelaySec"))
    assert delay, "RandomizedDelaySec= in plain seconds or minutes"
    seconds = int(delay.group(1)) * (60 if delay.group(2) == "min" else 1)
    assert 0 < seconds <= 5 * 60
    assert value(TIMER, "Timer", "Unit") == "reconcile.service"
    assert all(e.endswith(" America/New_York") for e in values(TIMER, "Timer", "OnCalendar"))


@needs_analyze
def test_timer_fires_at_the_new_york_slots_on_weekdays_only_across_a_dst_switch():
    # Two weeks around the 2025-03-09 switch to EDT: the UTC times move, New York's do not.
    start = date(2025, 3, 3)  # a Monday
    base = datetime.combine(start, time(0, 0), NEW_YORK).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(start + timedelta(days=14), time(0, 0), NEW_YORK)
    fired: set[datetime] = set()
    for expression in values(TIMER, "Timer", "OnCalendar"):
        # More iterations than two weeks can hold, then cut at the end of the window.
        for at in elapses(expression, base.strftime("%Y-%m-%d %H:%M:%S UTC"), 300):
            if at < end:
                fired.add(at.astimezone(NEW_YORK))
    expected = {
        datetime.combine(start + timedelta(days=d), slot, NEW_YORK)
        for d in range(14)
        if (start + timedelta(days=d)).weekday() < 5
        for slot in SLOTS
    }
    assert fired == expected
    first_slot = {
        f.date(): f.astimezone(ZoneInfo("UTC")).hour for f in fired if f.time() == SLOTS[0]
    }
    assert first_slot[date(2025, 3, 7)] == 14  # 09:35 EST
    assert first_slot[date(2025, 3, 10)] == 13  # 09:35 EDT


# --- what the README's install relies on --------------------------------------------------


@pytest.mark.parametrize("name", RECONCILE_SERVICES)
def test_service_writes_only_under_its_state_and_logs_directories(name: str):
    unit = UNITS / name
    state = "/var/lib/" + value(unit, "Service", "StateDirectory")
    logs = "/var/log/" + value(unit, "Service", "LogsDirectory")
    env = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    assert env["RECONCILER_STATE_DIR"].startswith(state + "/")
    assert env["RECONCILER_REPORTS_DIR"].startswith(logs + "/")
    assert value(unit, "Service", "ProtectSystem") == "strict"
    assert values(unit, "Service", "ReadWritePaths") == []
    exec_start = value(unit, "Service", "ExecStart").split()
    assert exec_start[0] == PRODUCTION_EXECUTABLE
    assert exec_start[exec_start.index("--dir") + 1].startswith(state + "/")
    # A missing env file must fail the unit ('-' would run on defaults), and it lives in /etc.
    assert value(unit, "Service", "EnvironmentFile") == "/etc/reconciler/reconciler.env"
    assert value(unit, "Service", "User") == "reconciler"
    assert value(unit, "Unit", "OnFailure") == "reconcile-notify@%n.service"


@pytest.mark.parametrize("name", RECONCILE_SERVICES)
def test_exec_start_uses_only_flags_that_reconcile_run_accepts(name: str):
    exec_start = value(UNITS / name, "Service", "ExecStart").split()
    assert exec_start[1] == "run"
    flags = [a for a in exec_start[2:] if a.startswith("--")]
    assert "--dir" in flags
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout), flag


def test_timer_service_treats_a_refusal_as_a_failure_that_alerts():
    # Exit 3 (refused) must not be listed as success: unattended, nobody would see it.
    unit = UNITS / "reconcile.service"
    assert value(unit, "Service", "Type") == "oneshot"
    assert values(unit, "Service", "SuccessExitStatus") == []
    assert "--once" in value(unit, "Service", "ExecStart").split()


def test_both_reconcile_services_share_one_sandbox_and_layout():
    how_it_runs = {"Type", "ExecStart", "Restart", "RestartSec", "KillSignal", "TimeoutStopSec"}
    how_it_runs |= {"TimeoutStartSec"}

    def rest(name: str) -> list[tuple[str, str]]:
        return [kv for kv in parse_unit(UNITS / name)["Service"] if kv[0] not in how_it_runs]

    assert rest("reconcile.service") == rest("reconcile-daemon.service")


def test_notify_unit_logs_the_failed_unit_at_crit_priority():
    exec_start = values(UNITS / "reconcile-notify@.service", "Service", "ExecStart")[0]
    assert exec_start.startswith("/usr/bin/systemd-cat ")
    assert "--priority=crit" in exec_start.split()
    assert "%i failed" in exec_start


def test_notify_unit_then_sends_through_reconcile_notify_without_hiding_the_journal_line():
    unit = UNITS / "reconcile-notify@.service"
    journal, notify = values(unit, "Service", "ExecStart")
    assert journal.startswith("/usr/bin/systemd-cat ")
    # '-': a notification that cannot be delivered does not fail the alert unit.
    assert notify.startswith("-" + PRODUCTION_EXECUTABLE + " notify --event failed ")
    assert "${MONITOR_EXIT_STATUS}" in notify and "%i failed" in notify
    assert value(unit, "Service", "EnvironmentFile") == "/etc/reconciler/reconciler.env"
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "notify", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--event", "--title", "--message"):
        assert flag in result.stdout
