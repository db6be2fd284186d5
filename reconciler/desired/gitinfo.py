"""Which git commit a desired-state directory came from, whether it has local changes, and
why git would not say.

Responsible for asking `git` (a subprocess with a short timeout) for HEAD and for
uncommitted changes under one directory, and for turning git's refusals into the real cause
(`safe.directory` "dubious ownership", permissions, no git binary, a timeout) so a gate can
name it instead of "not in a git repository". A directory outside any work tree, or one
whose cause git hides, yields no commit: provenance is reported, required only by gates.
Must not change the repository (no index refresh lock: GIT_OPTIONAL_LOCKS=0).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_SECONDS = 3.0

_DUBIOUS = re.compile(r"detected dubious ownership in repository at '([^']*)'")


@dataclass(frozen=True)
class GitRevision:
    commit: str | None  # HEAD's SHA, None outside a work tree or before the first commit
    dirty: bool | None  # uncommitted changes under the directory; None outside a work tree
    problem: str | None = None  # why git could not answer, when it is not "outside git"


def git_environment() -> dict[str, str]:
    """The environment every git call runs with: English messages (they are matched), no
    credential prompt (nobody is there to answer), no optional index lock."""
    return {
        **os.environ,
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def is_outside_git(stderr: str) -> bool:
    return "not a git repository" in stderr


def explain_git_failure(stderr: str, where: str, owner: str | None = None) -> str:
    """The real cause of a failed git command, for a person (pure).

    `where` names the checkout; `owner` (e.g. "uid 65534, running as uid 0") is added to the
    dubious-ownership explanation when the caller could find it out.
    """
    dubious = _DUBIOUS.search(stderr)
    if dubious:
        path = dubious.group(1)
        whose = f" ({owner})" if owner else ""
        return (
            f"git refuses to read {path}: the repository belongs to another user than the one "
            f"running the reconciler{whose}, and git's safe.directory check forbids that "
            f'("detected dubious ownership"). Let the service user own the checkout '
            f"(chown -R), or trust it for that user: git config --global --add safe.directory {path}"
        )
    lowered = stderr.lower()
    if "permission denied" in lowered or "insufficient permission" in lowered:
        return (
            f"git cannot use {where}: permission denied ({_first_message(stderr)}); the user "
            "running the reconciler needs read and write access to the checkout and its .git"
        )
    if is_outside_git(stderr):
        return f"{where} is not inside a git checkout"
    return f"git failed on {where}: {_first_message(stderr) or 'no message'}"


def _first_message(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else ""


def describe_owner(path: str | Path) -> str | None:
    """ "owned by uid N, running as uid M" for the dubious-ownership explanation."""
    try:
        owner = Path(path).stat().st_uid
    except OSError:
        return None
    return f"owned by uid {owner}, running as uid {os.geteuid()}"


def unreadable_git_dir(directory: Path, access=os.access) -> str | None:
    """Why git may have said "not a git repository" about a checkout it may not read.

    git reports an unreadable `.git` (or `.git/objects`) exactly like a missing one, so
    look for the nearest `.git` above `directory` and check that it is readable. `access`
    is `os.access` (injectable: root passes every check)."""
    for candidate in [directory, *directory.parents]:
        dot_git = candidate / ".git"
        try:
            if not (dot_git.exists() or dot_git.is_symlink()):
                continue
            if dot_git.is_file():  # a linked worktree: the file names the real directory
                needed = [dot_git]
            else:
                needed = [dot_git, dot_git / "HEAD", dot_git / "objects", dot_git / "refs"]
            for path in needed:
                mode = os.R_OK | (os.X_OK if path.is_dir() else 0)
                if not access(path, mode):
                    owner = describe_owner(path)
                    return (
                        f"git cannot read {path}: permission denied"
                        + (f" ({owner})" if owner else "")
                        + "; the user running the reconciler needs read and write access to the "
                        "checkout and its .git"
                    )
        except OSError as exc:
            return f"git cannot read {dot_git}: {exc.strerror or exc}"
        return None
    return None


def _git(directory: Path, *args: str) -> tuple[str | None, str | None]:
    """(stdout, None) on success, (None, problem) when git refused for a reason worth
    naming, (None, None) when the directory is simply not in a work tree."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=git_environment(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return None, "git is not installed (no git executable on PATH)"
    except subprocess.TimeoutExpired:
        return None, f"git status on {directory} did not answer within {GIT_TIMEOUT_SECONDS:g}s"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git could not be run on {directory}: {exc}"
    if completed.returncode == 0:
        return completed.stdout, None
    if not directory.is_dir():
        return None, None
    if is_outside_git(completed.stderr):
        return None, unreadable_git_dir(directory)
    dubious = _DUBIOUS.search(completed.stderr)
    owner = describe_owner(dubious.group(1)) if dubious else None
    return None, explain_git_failure(completed.stderr, str(directory), owner)


def git_revision(directory: str | Path) -> GitRevision:
    """HEAD and the dirty flag for `directory` (untracked files count as changes).

    One `git status --porcelain=v2 --branch` call answers both: its `# branch.oid` header
    is HEAD (or `(initial)` before the first commit) and any other line is a change.
    """
    output, problem = _git(
        Path(directory), "status", "--porcelain=v2", "--branch", "--untracked-files=all", "--", "."
    )
    if output is None:
        return GitRevision(None, None, problem)
    commit = None
    dirty = False
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return GitRevision(commit, dirty)
