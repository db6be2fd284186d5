import os

import pytest

from reconciler.util.files import atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "reports" / "cycle.json"
    atomic_write(target, "old\n")
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(os.listdir(target.parent)) == ["cycle.json"]


def test_atomic_write_when_the_directory_cannot_exist_then_raises_and_keeps_nothing(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory is expected")
    with pytest.raises(OSError):
        atomic_write(blocker / "cycle.json", "text")
    assert blocker.read_text() == "a file where a directory is expected"


def test_atomic_write_when_the_rename_fails_then_the_old_file_survives(tmp_path):
    target = tmp_path / "cycle.json"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        atomic_write(target, "text")
    assert target.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["cycle.json"]
