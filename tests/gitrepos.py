"""Real local git repositories for git-source tests: a bare "remote", an author's clone that
commits and pushes (merges to the branch), and the service's checkout the reconciler reads.

Importable from any test (pytest puts this folder on sys.path for tests/conftest.py). Git
runs with a private global config (GIT_CONFIG_GLOBAL) so the machine's own settings (a
`safe.directory = *`, a signing key) cannot change what a test sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "desired_state"
BRANCH = "main"


def git_env(root: Path) -> dict[str, str]:
    """Variables that isolate git from the machine's configuration, for os.environ or a
    subprocess environment."""
    config = root / "gitconfig"
    if not config.exists():
        config.write_text("", encoding="utf-8")
    return {
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "desk",
        "GIT_AUTHOR_EMAIL": "desk@example.invalid",
        "GIT_COMMITTER_NAME": "desk",
        "GIT_COMMITTER_EMAIL": "desk@example.invalid",
    }


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=check,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
        timeout=60,
    )


def out(repo: Path, *args: str) -> str:
    return git(repo, *args).stdout.strip()


@dataclass
class GitWorld:
    remote: Path  # bare repository: where merges land
    author: Path  # a clone that commits and pushes
    checkout: Path  # the service's clone; the desired state is checkout/desired_state

    @property
    def desired(self) -> Path:
        return self.checkout / "desired_state"

    def head(self, repo: Path | None = None) -> str:
        return out(repo or self.checkout, "rev-parse", "HEAD")

    def remote_head(self) -> str:
        return out(self.remote, "rev-parse", f"refs/heads/{BRANCH}")

    def commit(
        self,
        message: str,
        change: Callable[[Path], None] | None = None,
        *,
        sign: bool = False,
        push: bool = True,
    ) -> str:
        """Change the author's desired state, commit (signed or not) and push to the branch."""
        desired = self.author / "desired_state"
        if change is None:
            note = desired / "NOTES.md"
            note.write_text(
                (note.read_text() if note.exists() else "") + message + "\n", encoding="utf-8"
            )
        else:
            change(desired)
        git(self.author, "add", "-A")
        git(self.author, "commit", "-q", "-m", message, *(["-S"] if sign else ["--no-gpg-sign"]))
        if push:
            git(self.author, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")
        return self.head(self.author)

    def force_push_rewrite(self, message: str) -> str:
        """Rewrite the branch: drop its last commit and push another in its place."""
        git(self.author, "reset", "-q", "--hard", "HEAD~1")
        self.commit(message, push=False)
        git(self.author, "push", "-q", "--force", "origin", f"HEAD:refs/heads/{BRANCH}")
        return self.head(self.author)


def make_world(root: Path) -> GitWorld:
    """remote.git with one commit of the example desired state, cloned twice."""
    seed = root / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", BRANCH)
    shutil.copytree(EXAMPLE, seed / "desired_state")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "--no-gpg-sign", "-m", "desired state")
    remote = root / "remote.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(seed), str(remote)], check=True, capture_output=True
    )
    author = root / "author"
    checkout = root / "checkout"
    for clone in (author, checkout):
        subprocess.run(
            ["git", "clone", "-q", "--branch", BRANCH, str(remote), str(clone)],
            check=True,
            capture_output=True,
        )
    return GitWorld(remote, author, checkout)


def ssh_signing(world: GitWorld, root: Path) -> Path:
    """A throwaway ed25519 key: the author signs with it, the checkout trusts it through an
    allowed-signers file outside the checkout. Returns that file."""
    key = root / "signing_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "desk", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    git(world.author, "config", "gpg.format", "ssh")
    git(world.author, "config", "user.signingkey", str(key) + ".pub")
    allowed = root / "allowed_signers"
    allowed.write_text(
        f"desk@example.invalid {(root / 'signing_key.pub').read_text().strip()}\n",
        encoding="utf-8",
    )
    git(world.checkout, "config", "gpg.format", "ssh")
    git(world.checkout, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    return allowed
