"""The git source: before each cycle, bring the desired-state checkout to the head of the
configured branch, or refuse to apply anything else.

Responsible for the GitOps half of `reconcile run` (README, "GitOps: the desired-state
source"): fetch the branch from the configured repository into a private ref
(`refs/reconciler/source/<branch>`), fast-forward the checkout that holds `--dir` to it,
refuse when that is impossible (HEAD moved off the branch, local commits, history rewritten
by a force-push, local changes, another branch checked out), verify the head commit's
signature with `git verify-commit` when required (always in live mode), and name git's real
complaint (safe.directory, permissions, network) when it fails. It drives the `git` CLI in
subprocesses with timeouts: the same binary, configuration, credentials and signature
tooling (gpg, ssh-keygen) an operator uses by hand, with nothing to install.

Must not merge, rebase, reset or discard anything: the only writes are its own ref and the
fast-forward of HEAD. The pure parts (settings to config, refusal rules, status parsing,
signature outcomes) take values and are tested without git.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.desired.gitinfo import (
    describe_owner,
    explain_git_failure,
    git_environment,
    unreadable_git_dir,
)
from reconciler.model.settings import Settings

SOURCE_REF_PREFIX = "refs/reconciler/source/"
FETCH_TIMEOUT_SECONDS = 120.0
LOCAL_TIMEOUT_SECONDS = 30.0  # verify-commit may wait for gpg-agent

_BAD_BRANCH = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20\x7f~^:?*\[\\])|(@\{)|([/.]$)|(\.lock$)|(//)")
_USERINFO = re.compile(r"(://)[^/@]+@")

# `git log --format=%G?` letters for a signature git verify-commit did not accept.
_SIGNATURE_PROBLEMS = {
    "N": "is not signed",
    "B": "has a bad signature (the commit or its signature was altered)",
    "E": "has a signature that cannot be checked (unknown key, or no trusted signers configured)",
    "X": "has a good signature that has expired",
    "Y": "has a good signature made by an expired key",
    "R": "has a good signature made by a revoked key",
    "U": "has a good signature by a key that is not trusted",
}


class GitSourceError(Exception):
    """The git source could not be read or is misconfigured (exit 1, retried next cycle)."""


class GitSourceRefused(Exception):
    """The checkout cannot be brought to the branch head safely (exit 3); nothing applies."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)


@dataclass(frozen=True)
class SourceConfig:
    url: str  # as given to `git fetch`: URL, absolute path or a remote name
    branch: str
    poll: bool
    verify: bool
    verify_because: str  # why a signature is required, for the refusal

    @property
    def ref(self) -> str:
        return SOURCE_REF_PREFIX + self.branch

    @property
    def shown(self) -> str:
        """`branch of url`, with any password in the URL hidden."""
        url = _USERINFO.sub(r"\1***@", self.url)
        return f"{self.branch} of {url}"


def _looks_like_path(url: str) -> bool:
    """A local path, as opposed to a URL, scp-like `host:path`, or a remote name."""
    if "://" in url or re.match(r"[^/:]+:", url):
        return False
    return url.startswith((".", "/", "~")) or "/" in url


def source_config(
    settings: Settings, cwd: str | os.PathLike[str] | None = None
) -> SourceConfig | None:
    """The git source the settings describe; None when RECONCILER_GIT_URL is unset (pure
    apart from resolving a relative path against `cwd`)."""
    url = (settings.git_url or "").strip()
    if not url:
        return None
    if url.startswith("-") or any(c in url for c in "\n\r\x00"):
        raise GitSourceError(f"RECONCILER_GIT_URL={url!r} is not a repository URL or path")
    branch = settings.git_branch.strip()
    if not branch or _BAD_BRANCH.search(branch):
        raise GitSourceError(f"RECONCILER_GIT_BRANCH={branch!r} is not a valid branch name")
    if _looks_like_path(url):
        # git resolves a relative path against the checkout, the operator meant the cwd.
        url = str((Path(cwd or os.getcwd()) / Path(url).expanduser()).resolve())
    if settings.is_live:
        verify, because = True, "live mode always requires it"
    else:
        verify, because = settings.git_verify, "RECONCILER_GIT_VERIFY=true"
    return SourceConfig(url, branch, settings.git_poll, verify, because)


@dataclass(frozen=True)
class CheckoutFacts:
    """What git says about the checkout and the fetched branch head, as values."""

    toplevel: str
    head: str | None  # None: the checkout has no commit
    tip: str  # the branch head last fetched
    previous_tip: str | None  # the branch head before this fetch (None: first fetch)
    current_branch: str | None  # None: detached HEAD
    head_on_branch: bool  # HEAD is the tip or an ancestor of it (fast-forward possible)
    tip_in_head: bool  # the tip is an ancestor of HEAD (HEAD is ahead)
    rewritten: bool  # the previous tip is no longer on the branch (force-push)
    local_changes: tuple[str, ...]


def _short(sha: str | None) -> str:
    return (sha or "-")[:10]


def refusals(facts: CheckoutFacts, config: SourceConfig) -> list[str]:
    """Why the checkout must not be fast-forwarded and applied (empty: it may) (pure)."""
    reasons = []
    top = facts.toplevel
    if facts.local_changes:
        listed = ", ".join(facts.local_changes[:5]) + (
            ", ..." if len(facts.local_changes) > 5 else ""
        )
        reasons.append(
            f"the checkout {top} has local changes ({listed}); the git source applies only "
            f"commits of {config.shown}: push them through a merge, or discard them"
        )
    if facts.current_branch is not None and facts.current_branch != config.branch:
        reasons.append(
            f"the checkout {top} is on branch {facts.current_branch} but the git source follows "
            f"{config.branch}: git -C {top} switch {config.branch}"
        )
    if facts.head is None:
        reasons.append(f"the checkout {top} has no commit checked out")
    elif not facts.head_on_branch:
        if facts.rewritten:
            why = (
                f"{config.branch} was force-pushed: its history was rewritten from "
                f"{_short(facts.previous_tip)} to {_short(facts.tip)}"
            )
        elif facts.tip_in_head:
            why = f"HEAD has commits that are not on {config.branch}"
        else:
            why = f"HEAD was moved to a commit that is not on {config.branch}"
        reasons.append(
            f"HEAD {_short(facts.head)} of {top} is not on {config.shown} (head "
            f"{_short(facts.tip)}), so it cannot be fast-forwarded: {why}. Nothing is applied "
            f"until the checkout is back on the branch; review, then git -C {top} reset --keep "
            f"{_short(facts.tip)}"
        )
    return reasons


def local_changes(porcelain_z: str, desired_relative: str) -> tuple[str, ...]:
    """Paths that make the checkout unfit to fast-forward, from `git status --porcelain -z`
    (pure): tracked changes anywhere, and untracked files under the desired-state
    directory (the loader would read them). Untracked files elsewhere do not matter."""
    entries = porcelain_z.split("\0")
    changed = []
    prefix = "" if desired_relative in ("", ".") else desired_relative.rstrip("/") + "/"
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            i += 1  # a rename or copy is followed by its original path
        if code == "??":
            if path.startswith(prefix):
                changed.append(path)
        elif code != "!!":
            changed.append(path)
    return tuple(changed)


def signature_refusal(commit: str, code: str, detail: str, config: SourceConfig) -> str:
    """Why the head commit's signature is not accepted, from its `%G?` letter (pure)."""
    problem = _SIGNATURE_PROBLEMS.get(code, "has a signature git does not accept")
    return (
        f"the head commit {_short(commit)} of {config.shown} {problem}"
        + (f" (git verify-commit: {detail})" if detail else "")
        + f"; a trusted signature is required ({config.verify_because})"
    )


def signers_file_problem(gpg_format: str, signers_file: str | None, toplevel: str) -> str | None:
    """SSH signatures are only as good as the allowed-signers file: refuse a missing one, and
    one inside the checkout, where a commit could add its own key (pure)."""
    if gpg_format != "ssh":
        return None
    if not signers_file:
        return "gpg.format is ssh but gpg.ssh.allowedSignersFile is not set: no key is trusted"
    path = Path(toplevel, signers_file).resolve()
    if path == Path(toplevel).resolve() or Path(toplevel).resolve() in path.parents:
        return (
            f"the allowed signers file {path} is inside the checkout: a commit could change who "
            "may sign. Keep it outside (e.g. /etc/reconciler/allowed_signers)"
        )
    return None


@dataclass(frozen=True)
class SyncResult:
    commit: str  # HEAD after the sync: the branch head
    previous: str  # HEAD before the sync
    fetched: bool
    signer: str | None  # who signed the head commit, when verification ran
    source: str  # `branch of url`
    rewritten_from: str | None = None  # the branch was force-pushed but HEAD was not affected

    @property
    def moved(self) -> bool:
        return self.commit != self.previous

    @property
    def line(self) -> str:
        where = f"git source {self.source}: at {_short(self.commit)}"
        where += f", fast-forwarded from {_short(self.previous)}" if self.moved else ", up to date"
        if not self.fetched:
            where += " (not fetched this cycle: RECONCILER_GIT_POLL=false)"
        if self.rewritten_from:
            where += f" (the branch was force-pushed; {_short(self.rewritten_from)} left it)"
        return where + (f"; signature good: {self.signer}" if self.signer else "")


class _Git:
    """git commands in one directory; every failure becomes a GitSourceError naming the cause."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def run(
        self, *args: str, timeout: float = LOCAL_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", "-C", str(self.directory), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=git_environment(),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise GitSourceError("git is not installed (no git executable on PATH)") from None
        except subprocess.TimeoutExpired:
            raise GitSourceError(
                f"git {args[0]} in {self.directory} did not finish within {timeout:g}s"
            ) from None
        except OSError as exc:
            raise GitSourceError(f"git could not be run in {self.directory}: {exc}") from None

    def fail(self, completed: subprocess.CompletedProcess[str], what: str = "") -> GitSourceError:
        match = re.search(r"dubious ownership in repository at '([^']*)'", completed.stderr)
        owner = describe_owner(match.group(1)) if match else None
        cause = explain_git_failure(completed.stderr, str(self.directory), owner)
        return GitSourceError(f"{what}: {cause}" if what else cause)

    def out(self, *args: str, timeout: float = LOCAL_TIMEOUT_SECONDS) -> str:
        completed = self.run(*args, timeout=timeout)
        if completed.returncode != 0:
            raise self.fail(completed)
        return completed.stdout

    def commit_of(self, ref: str) -> str | None:
        completed = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
        )
        if completed.returncode == 0:
            return completed.stdout.strip()
        if completed.returncode == 1 and not completed.stderr.strip():
            return None
        raise self.fail(completed)

    def is_ancestor(self, older: str, newer: str) -> bool:
        completed = self.run("merge-base", "--is-ancestor", older, newer)
        if completed.returncode in (0, 1):
            return completed.returncode == 0
        raise self.fail(completed)

    def current_branch(self) -> str | None:
        completed = self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        if completed.returncode == 0:
            return completed.stdout.strip()
        if completed.returncode == 1:
            return None
        raise self.fail(completed)

    def config(self, *args: str) -> str | None:
        completed = self.run("config", *args)
        if completed.returncode == 0:
            return completed.stdout.strip()
        if completed.returncode == 1:
            return None  # not set
        raise self.fail(completed)


def _toplevel(directory: Path, config: SourceConfig) -> Path:
    if not directory.is_dir():
        raise GitSourceError(
            f"the desired-state directory {directory} does not exist; clone the git source "
            f"first: git clone --branch {config.branch} {config.url} <checkout>"
        )
    completed = _Git(directory).run("rev-parse", "--show-toplevel")
    if completed.returncode != 0:
        if "not a git repository" in completed.stderr:
            unreadable = unreadable_git_dir(directory)
            if unreadable:
                raise GitSourceError(unreadable)
            raise GitSourceError(
                f"{directory} is not inside a git checkout, but RECONCILER_GIT_URL is set: clone "
                f"it first: git clone --branch {config.branch} {config.url} <checkout>"
            )
        raise _Git(directory).fail(completed)
    return Path(completed.stdout.strip())


def _fetch(git: _Git, config: SourceConfig) -> None:
    completed = git.run(
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-recurse-submodules",
        "--no-write-fetch-head",
        "--",
        config.url,
        f"+refs/heads/{config.branch}:{config.ref}",
        timeout=FETCH_TIMEOUT_SECONDS,
    )
    if completed.returncode == 0:
        return
    if "couldn't find remote ref" in completed.stderr:
        raise GitSourceError(f"cannot fetch {config.shown}: the branch does not exist there")
    raise git.fail(completed, f"cannot fetch {config.shown}")


def _verify(git: _Git, commit: str, config: SourceConfig, toplevel: str) -> str:
    """The signer of `commit`; GitSourceRefused when its signature is not trusted."""
    problem = signers_file_problem(
        git.config("--get", "gpg.format") or "openpgp",
        git.config("--path", "--get", "gpg.ssh.allowedSignersFile"),
        toplevel,
    )
    if problem:
        raise GitSourceRefused([f"cannot verify {config.shown}: {problem}"])
    verified = git.run("verify-commit", commit)
    # Not .strip(): Python counts the \x1f separator as whitespace.
    shown = git.out("log", "-1", "--format=%G?%x1f%GK%x1f%GS", commit, "--").rstrip("\n")
    code, key, signer = [*shown.split("\x1f"), "", ""][:3]
    if verified.returncode != 0:
        detail = next((line.strip() for line in verified.stderr.splitlines() if line.strip()), "")
        raise GitSourceRefused([signature_refusal(commit, code or "N", detail, config)])
    return f"{signer or 'unknown signer'} (key {key or '?'})"


def sync_checkout(
    directory: str | os.PathLike[str], config: SourceConfig, *, fetch: bool
) -> SyncResult:
    """Fetch (when `fetch`), check, verify and fast-forward the checkout holding `directory`.

    Raises GitSourceRefused (nothing may be applied) or GitSourceError (git failed; the
    message is git's real cause). Verification runs before the fast-forward, so a refused
    head never reaches the checkout.
    """
    desired = Path(directory).resolve()
    top = _toplevel(desired, config)
    git = _Git(top)
    previous_tip = git.commit_of(config.ref)
    if fetch:
        _fetch(git, config)
    tip = git.commit_of(config.ref)
    if tip is None:
        raise GitSourceError(
            f"{config.shown} has not been fetched into {top} yet (RECONCILER_GIT_POLL=false "
            "fetches only when `reconcile run` starts)"
        )
    head = git.commit_of("HEAD")
    on_branch = head is not None and (head == tip or git.is_ancestor(head, tip))
    rewritten = previous_tip is not None and previous_tip != tip
    if rewritten:
        # If the old head's objects are gone, it is not in the new history either.
        with contextlib.suppress(GitSourceError):
            rewritten = not git.is_ancestor(previous_tip, tip)
    status = git.out("status", "--porcelain=v1", "-z", "--untracked-files=all")
    relative = os.path.relpath(desired, top.resolve())
    facts = CheckoutFacts(
        toplevel=str(top),
        head=head,
        tip=tip,
        previous_tip=previous_tip,
        current_branch=git.current_branch(),
        head_on_branch=on_branch,
        tip_in_head=head is not None and not on_branch and git.is_ancestor(tip, head),
        rewritten=rewritten,
        local_changes=local_changes(status, relative),
    )
    reasons = refusals(facts, config)
    if reasons:
        raise GitSourceRefused(reasons)
    assert head is not None  # refusals() refuses a checkout without a commit
    signer = _verify(git, tip, config, str(top)) if config.verify else None
    if head != tip:
        completed = git.run("merge", "--ff-only", "--quiet", tip)
        if completed.returncode != 0:
            raise git.fail(completed, f"cannot fast-forward {top} to {_short(tip)}")
        now = git.commit_of("HEAD")
        if now != tip:
            raise GitSourceError(
                f"after the fast-forward HEAD of {top} is {_short(now)}, not {_short(tip)}"
            )
    return SyncResult(
        commit=tip,
        previous=head,
        fetched=fetch,
        signer=signer,
        source=config.shown,
        rewritten_from=previous_tip if rewritten else None,
    )


def sync_for_cycle(
    directory: str | os.PathLike[str], settings: Settings, *, fetch: bool
) -> SyncResult | None:
    """Bring the checkout to the git source's branch head before a cycle; None when no git
    source is configured (the checkout is used as it is)."""
    config = source_config(settings)
    if config is None:
        return None
    return sync_checkout(directory, config, fetch=fetch)
