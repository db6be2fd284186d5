"""RiskPolicy fields that change what risk allows, read from YAML."""

import shutil
from pathlib import Path

from reconciler.desired import load_desired_state, validate_directory

EXAMPLE = Path(__file__).resolve().parents[3] / "desired_state"


def copy_with_policy_line(tmp_path, line):
    target = tmp_path / "desired_state"
    shutil.copytree(EXAMPLE, target)
    policy = target / "risk" / "default.yaml"
    policy.write_text(policy.read_text().replace("  onBreach: clip", f"  onBreach: clip\n  {line}"))
    return target


def test_allow_delayed_data_defaults_to_false():
    state = load_desired_state(EXAMPLE)
    assert state.risk_policies["default"].allow_delayed_data is False


def test_allow_delayed_data_true_is_read(tmp_path):
    state = load_desired_state(copy_with_policy_line(tmp_path, "allowDelayedData: true"))
    assert state.risk_policies["default"].allow_delayed_data is True


def test_allow_delayed_data_must_be_a_boolean(tmp_path):
    _, diagnostics = validate_directory(copy_with_policy_line(tmp_path, "allowDelayedData: yes"))
    assert [d.code for d in diagnostics if d.severity == "error"] == ["E_YAML_BOOLEAN"]
