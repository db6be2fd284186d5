"""The pre-commit hook other repositories use runs `reconcile validate` on desired_state/."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

HOOKS = Path(__file__).resolve().parents[3] / ".pre-commit-hooks.yaml"


def test_hook_runs_reconcile_validate_once_for_the_whole_directory():
    (hook,) = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert hook["id"] == "reconcile-validate"
    assert hook["entry"] == "reconcile validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False


def test_hook_triggers_on_yaml_under_desired_state_only():
    (hook,) = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    files = re.compile(hook["files"])
    assert files.search("desired_state/portfolios/us-core.yaml")
    assert files.search("desired_state/schedule.yml")
    assert not files.search("desired_state/README.md")
    assert not files.search("other/portfolio.yaml")
