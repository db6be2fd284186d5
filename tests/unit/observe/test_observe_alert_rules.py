"""The example Prometheus alert rules (monitoring/reconciler-alerts.yml) name only metrics the
reconciler exports, and `promtool check rules` accepts them where promtool is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from reconciler.observe.metrics import SPECS

RULES = Path(__file__).resolve().parents[3] / "monitoring" / "reconciler-alerts.yml"
README = Path(__file__).resolve().parents[3] / "README.md"
NAME = re.compile(r"\breconciler_[a-z_]+\b")


def exported(name: str) -> bool:
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    return name in SPECS or base in SPECS


def test_every_alert_rule_uses_only_exported_metrics():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {
        "ReconcilerGatewayDown",
        "ReconcilerNoSuccessfulCycle",
        "ReconcilerDriftOutOfBand",
        "ReconcilerOrderRejected",
    }
    for rule in rules:
        names = NAME.findall(rule["expr"])
        assert names, rule["alert"]
        assert [n for n in names if not exported(n)] == [], rule["alert"]


def test_the_readme_lists_every_metric():
    text = README.read_text(encoding="utf-8")
    assert [name for name in SPECS if f"`{name}`" not in text] == []


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed; the rules are checked as YAML above")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
