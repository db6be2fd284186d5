"""The desired state as it was at a git revision (`reconcile plan --base origin/main`).

Responsible for reading the desired-state folder at REF out of the repository that holds it
(`git archive` of that folder at that commit, unpacked into a temporary directory) and
loading it with the same loader as the working tree, so a pull request's plan can say what
the change does to the desired state compared with the branch it will merge into. Must not
write anything into the user's repository (no checkout, no worktree, no ref), fetch, or
connect to a gateway or a store.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.desired.gitinfo import explain_git_failure, git_environment
from reconciler.model.desired import DesiredState

GIT_TIMEOUT_SECONDS = 30.0


class GitBaseError(Exception):
    """The base revision cannot be read (unknown ref, not a repository, git failed)."""


@dataclass(frozen=True)
class BaseState:
    """The desired state at `ref` (None when the folder did not exist there) and its commit."""

    ref: str
    commit: str
    state: DesiredState | None
    problem: str | None = None  # the base's own desired state is invalid: why

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.commit[:10]})"


def _git(directory: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=not binary,
            timeout=GIT_TIMEOUT_SECONDS,
            env=git_environment(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise GitBaseError("git is not installed (no git executable on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitBaseError(f"git did not answer within {GIT_TIMEOUT_SECONDS:g}s") from None


def _stderr(completed: subprocess.CompletedProcess) -> str:
    err = completed.stderr
    return err.decode("utf-8", "replace") if isinstance(err, bytes) else err


def load_base(directory: str | Path, ref: str) -> BaseState:
    """The desired state in `directory` as of git revision `ref` (a branch, tag or SHA)."""
    from reconciler.desired.loader import validate_directory

    root = Path(directory)
    if not root.is_dir():
        raise GitBaseError(f"{directory} is not a directory")
    found = _git(root, "rev-parse", "--show-prefix")
    if found.returncode != 0:
        raise GitBaseError(
            f"--base {ref}: " + explain_git_failure(_stderr(found), str(directory))
        )
    prefix = found.stdout.strip()
    resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise GitBaseError(
            f"--base {ref}: no such revision in this repository (fetch it first, e.g. "
            f"`git fetch origin main`, or use `fetch-depth: 0` in actions/checkout)"
        )
    commit = resolved.stdout.strip()
    pathspec = prefix.rstrip("/") or "."
    exists = _git(root, "cat-file", "-e", f"{commit}:{prefix}")
    if exists.returncode != 0:
        return BaseState(ref, commit, None)
    # The folder at that commit, at the same place below the temporary root as in the repo.
    top = _git(root, "rev-parse", "--show-toplevel").stdout.strip() or str(root)
    archive = _git(Path(top), "archive", "--format=tar", commit, "--", pathspec, binary=True)
    if archive.returncode != 0:
        raise GitBaseError(f"--base {ref}: git archive failed: {_stderr(archive).strip()}")
    with tempfile.TemporaryDirectory(prefix="reconcile-base-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        folder = Path(tmp, prefix) if prefix else Path(tmp)
        state, diagnostics = validate_directory(folder, base=tmp)
    if state is None:
        first = next((d for d in diagnostics if d.severity == "error"), None)
        problem = f"{first.file}:{first.line}: {first.code} {first.message}" if first else "invalid"
        return BaseState(ref, commit, None, problem=problem)
    return BaseState(
        ref,
        commit,
        dataclasses.replace(state, directory=str(directory), git_commit=commit, git_dirty=False),
    )

