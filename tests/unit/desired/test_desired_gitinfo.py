"""Git provenance of a desired-state directory, checked against a real temporary repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.desired import load_desired_state
from reconciler.desired.gitinfo import git_revision

EXAMPLE = Path(__file__).resolve().parents[3] / "desired_state"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "test@example.invalid")
    git(tmp_path, "config", "user.name", "test")
    git(tmp_path, "config", "commit.gpgsign", "false")
    shutil.copytree(EXAMPLE, tmp_path / "desired_state")
    (tmp_path / "README.md").write_text("repo\n", encoding="utf-8")
    return tmp_path


def commit_all(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "desired state")
    return git(repo, "rev-parse", "HEAD")


def test_directory_outside_git_has_no_commit_and_no_dirty_flag(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "desired_state")
    state = load_desired_state(tmp_path / "desired_state")
    assert (state.git_commit, state.git_dirty) == (None, None)


def test_repository_without_a_commit_is_dirty_with_no_commit(repo):
    assert git_revision(repo / "desired_state") == git_revision(repo / "desired_state")
    revision = git_revision(repo / "desired_state")
    assert (revision.commit, revision.dirty) == (None, True)


def test_committed_directory_reports_head_and_clean(repo):
    head = commit_all(repo)
    state = load_desired_state(repo / "desired_state")
    assert (state.git_commit, state.git_dirty) == (head, False)


def test_modified_file_under_the_directory_is_dirty(repo):
    head = commit_all(repo)
    path = repo / "desired_state" / "schedule.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")
    state = load_desired_state(repo / "desired_state")
    assert (state.git_commit, state.git_dirty) == (head, True)


def test_untracked_file_under_the_directory_is_dirty(repo):
    commit_all(repo)
    (repo / "desired_state" / "portfolios" / "draft.yml").write_text(
        "# not yet\n---\n"
        + (repo / "desired_state/risk/default.yaml")
        .read_text()
        .replace("name: default", "name: draft"),
        encoding="utf-8",
    )
    assert git_revision(repo / "desired_state").dirty is True


def test_changes_outside_the_directory_do_not_make_it_dirty(repo):
    commit_all(repo)
    (repo / "README.md").write_text("changed\n", encoding="utf-8")
    (repo / "other.txt").write_text("new\n", encoding="utf-8")
    assert git_revision(repo / "desired_state").dirty is False
