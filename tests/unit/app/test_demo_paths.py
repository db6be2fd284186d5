from pathlib import Path

from reconciler.app.demo import example_directory


def test_outside_a_repository_the_demo_uses_the_example_shipped_in_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    directory = example_directory()
    assert directory.is_dir()
    assert (directory / "schedule.yaml").is_file()
    assert Path("desired_state") != directory


def test_in_a_repository_the_demo_uses_its_desired_state(tmp_path, monkeypatch):
    (tmp_path / "desired_state").mkdir()
    monkeypatch.chdir(tmp_path)
    assert example_directory() == Path("desired_state")
