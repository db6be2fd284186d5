"""README's YAML examples load as written: the desired-state snippets validate together and
the scenario file loads in the simulator (the shell examples run in
tests/integration/cli/test_readme_review_flow.py)."""

from __future__ import annotations

from readme_examples import readme_examples, write_files

from reconciler.desired import validate_directory
from reconciler.sim.scenario import load_scenario


def test_readme_marks_the_desired_state_the_scenario_and_the_review_flow():
    examples = readme_examples()
    assert {
        "desired_state/portfolios/us-core.yaml",
        "desired_state/risk/default.yaml",
        "desired_state/schedule.yaml",
        "scenario.yaml",
    } <= set(examples.files)
    assert any(line.startswith("reconcile plan ") for line in examples.commands)


def test_readme_desired_state_snippets_validate_without_a_problem(tmp_path):
    write_files(readme_examples(), tmp_path)
    state, diagnostics = validate_directory(tmp_path / "desired_state", base=tmp_path)
    assert [d.render() for d in diagnostics if d.severity == "error"] == []
    assert state is not None
    assert [p.name for p in state.portfolios] == ["us-core"]
    assert set(state.risk_policies) == {"default"} and len(state.schedules) == 1


def test_readme_scenario_loads_with_bare_dates(tmp_path):
    write_files(readme_examples(), tmp_path)
    scenario = load_scenario(tmp_path / "scenario.yaml")
    assert scenario.name == "thin-market"


def test_a_marked_block_becomes_a_file_and_run_blocks_become_commands():
    text = (
        "<!-- example: a/b.yaml -->\n```yaml\nx: 1\n```\n"
        "<!-- example: run -->\n```bash\necho one\n\necho two\n```\n"
        "```bash\nnot marked\n```\n"
    )
    examples = readme_examples(text)
    assert examples.files == {"a/b.yaml": "x: 1\n"}
    assert examples.commands == ["echo one", "echo two"]
