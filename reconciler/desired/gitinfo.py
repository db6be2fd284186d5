"""Which git commit a desired-state directory came from, and whether it has local changes.

Responsible for asking `git` (a subprocess with a short timeout) for HEAD and for
uncommitted changes under one directory. Anything unexpected (no git binary, not a work
tree, no commit yet, a timeout) yields None rather than an error: provenance is reported,
never required. Must not change the repository (no index refresh lock: GIT_OPTIONAL_LOCKS=0).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class GitRevision:
    commit: str | None  # HEAD's SHA, None outside a work tree or before the first commit
    dirty: bool | None  # uncommitted changes under the directory; None outside a work tree


def _git(directory: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout if completed.returncode == 0 else None


def git_revision(directory: str | Path) -> GitRevision:
    """HEAD and the dirty flag for `directory` (untracked files count as changes).

    One `git status --porcelain=v2 --branch` call answers both: its `# branch.oid` header
    is HEAD (or `(initial)` before the first commit) and any other line is a change.
    """
    output = _git(
        Path(directory), "status", "--porcelain=v2", "--branch", "--untracked-files=all", "--", "."
    )
    if output is None:
        return GitRevision(None, None)
    commit = None
    dirty = False
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return GitRevision(commit, dirty)
