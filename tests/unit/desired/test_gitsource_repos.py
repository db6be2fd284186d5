"""The git source against real local repositories (bare remote, author clone, service
checkout made in tmp_path): fast-forward, refusals off the branch, signatures, and git's
real complaint when it will not read the checkout. No network: the remote is a path."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from gitrepos import BRANCH, git, git_env, make_world, out, ssh_signing

from reconciler.app.cli import cli
from reconciler.desired import load_desired_state
from reconciler.desired.gitinfo import git_revision, unreadable_git_dir
from reconciler.desired.gitsource import (
    GitSourceError,
    GitSourceRefused,
    SourceConfig,
    sync_checkout,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def world(tmp_path, monkeypatch):
    for name, value in git_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return make_world(tmp_path)


def config(world, *, verify=False, url=None, branch=BRANCH) -> SourceConfig:
    return SourceConfig(
        url or str(world.remote), branch, True, verify, "RECONCILER_GIT_VERIFY=true"
    )


def refusal(world, **kw) -> str:
    with pytest.raises(GitSourceRefused) as caught:
        sync_checkout(world.desired, config(world, **kw), fetch=True)
    return str(caught.value)


def test_a_merged_commit_is_fast_forwarded_and_becomes_the_desired_states_commit(world):
    before = world.head()
    merged = world.commit("raise the band")
    result = sync_checkout(world.desired, config(world), fetch=True)
    assert (result.previous, result.commit, result.moved) == (before, merged, True)
    assert world.head() == merged
    assert load_desired_state(world.desired).git_commit == merged
    assert "fast-forwarded from" in result.line


def test_an_up_to_date_checkout_stays_where_it_is(world):
    result = sync_checkout(world.desired, config(world), fetch=True)
    assert (result.moved, result.commit) == (False, world.remote_head())
    assert "up to date" in result.line


def test_each_sync_picks_up_the_next_merge_in_the_same_process(world):
    seen = []
    for n in range(3):
        merged = world.commit(f"change {n}")
        seen.append((merged, sync_checkout(world.desired, config(world), fetch=True).commit))
    assert all(merged == applied for merged, applied in seen)


def test_without_a_fetch_the_last_fetched_head_is_used_and_a_new_merge_is_not_seen(world):
    first = world.commit("first")
    sync_checkout(world.desired, config(world), fetch=True)
    world.commit("second, not fetched yet")
    result = sync_checkout(world.desired, config(world), fetch=False)
    assert (result.commit, result.fetched) == (first, False)
    assert "RECONCILER_GIT_POLL=false" in result.line


def test_a_checkout_moved_to_a_commit_off_the_branch_is_refused_and_left_alone(world):
    git(world.checkout, "checkout", "-q", "--detach")
    (world.desired / "NOTES.md").write_text("local experiment\n")
    git(world.checkout, "add", "-A")
    git(world.checkout, "commit", "-q", "--no-gpg-sign", "-m", "off the branch")
    off = world.head()
    world.commit("merged meanwhile")
    reason = refusal(world)
    assert f"HEAD {off[:10]}" in reason and f"is not on {BRANCH} of" in reason
    assert "cannot be fast-forwarded" in reason
    assert world.head() == off


def test_local_commits_on_the_branch_are_refused_as_ahead_of_it(world):
    (world.desired / "NOTES.md").write_text("local\n")
    git(world.checkout, "add", "-A")
    git(world.checkout, "commit", "-q", "--no-gpg-sign", "-m", "local only")
    assert "HEAD has commits that are not on main" in refusal(world)


def test_a_force_push_that_rewrites_applied_history_is_refused_naming_it(world):
    applied = world.commit("applied")
    sync_checkout(world.desired, config(world), fetch=True)
    rewritten = world.force_push_rewrite("rewritten")
    reason = refusal(world)
    assert f"force-pushed: its history was rewritten from {applied[:10]} to {rewritten[:10]}" in (
        reason
    )
    assert world.head() == applied


def test_uncommitted_changes_in_the_checkout_are_refused(world):
    (world.desired / "risk" / "default.yaml").write_text("edited on the server\n")
    world.commit("merged")
    reason = refusal(world)
    assert "local changes (desired_state/risk/default.yaml)" in reason


def test_another_branch_checked_out_is_refused(world):
    git(world.checkout, "switch", "-q", "-c", "experiment")
    assert "is on branch experiment but the git source follows main" in refusal(world)


def test_a_branch_missing_from_the_remote_is_an_error_naming_it(world):
    with pytest.raises(GitSourceError, match=r"releases of .*the branch does not exist there"):
        sync_checkout(world.desired, config(world, branch="releases"), fetch=True)


def test_an_unreachable_remote_is_an_error_naming_it(world, tmp_path):
    missing = tmp_path / "no-such-remote.git"
    with pytest.raises(GitSourceError, match=f"cannot fetch main of {missing}"):
        sync_checkout(world.desired, config(world, url=str(missing)), fetch=True)


def test_a_directory_outside_git_is_an_error_saying_to_clone(world, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitSourceError, match=r"not inside a git checkout.*git clone --branch main"):
        sync_checkout(plain, config(world), fetch=True)


# ------------------------------------------------------------------ signatures

needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen is needed for SSH commit signatures"
)


def test_an_unsigned_head_is_refused_when_verification_is_required(world):
    before = world.head()
    unsigned = world.commit("unsigned")
    reason = refusal(world, verify=True)
    assert f"the head commit {unsigned[:10]} of main of" in reason
    assert "a trusted signature is required (RECONCILER_GIT_VERIFY=true)" in reason
    assert world.head() == before  # the refused commit never reaches the checkout


@needs_ssh_keygen
def test_an_unsigned_head_is_refused_as_not_signed_when_ssh_signers_are_configured(world, tmp_path):
    ssh_signing(world, tmp_path)
    world.commit("unsigned")
    assert "is not signed" in refusal(world, verify=True)


@needs_ssh_keygen
def test_a_head_signed_by_a_trusted_ssh_key_is_accepted_and_its_signer_reported(world, tmp_path):
    ssh_signing(world, tmp_path)
    signed = world.commit("signed", sign=True)
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in out(world.author, "cat-file", "commit", signed)
    result = sync_checkout(world.desired, config(world, verify=True), fetch=True)
    assert result.commit == signed == world.head()
    assert result.signer is not None and "desk@example.invalid" in result.signer
    assert "signature good: desk@example.invalid" in result.line


@needs_ssh_keygen
def test_a_head_signed_by_a_key_nobody_trusts_is_refused(world, tmp_path):
    allowed = ssh_signing(world, tmp_path)
    allowed.write_text(
        "someone@example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA" + "A" * 42 + "\n"
    )
    world.commit("signed by an unknown key", sign=True)
    reason = refusal(world, verify=True)
    assert "a trusted signature is required" in reason
    assert "is not signed" not in reason


@needs_ssh_keygen
def test_an_allowed_signers_file_inside_the_checkout_is_refused(world, tmp_path):
    ssh_signing(world, tmp_path)
    git(world.checkout, "config", "gpg.ssh.allowedSignersFile", "desired_state/allowed_signers")
    world.commit("signed", sign=True)
    assert "is inside the checkout: a commit could change who may sign" in refusal(
        world, verify=True
    )


@pytest.fixture
def gnupg_homes(tmp_path, monkeypatch):
    """Two throwaway GnuPG homes (the author's, the service's); their agents stopped after."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg is not installed")
    homes = []
    for name in ("gpg-author", "gpg-service"):
        home = tmp_path / name
        home.mkdir(mode=0o700)
        homes.append(home)
    monkeypatch.setenv("GNUPGHOME", str(homes[0]))
    yield homes
    for home in homes:
        subprocess.run(
            ["gpgconf", "--kill", "all"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
        )


def _gpg_signing_key(world, home) -> str:
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            *("gpg", "--batch", "--passphrase", "", "--quick-gen-key"),
            *("Desk <desk@example.invalid>", "ed25519", "sign", "never"),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    listing = subprocess.run(
        ["gpg", "--list-keys", "--with-colons"], env=env, check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    git(world.author, "config", "user.signingkey", fingerprint)
    return fingerprint


def test_a_head_signed_by_a_gpg_key_in_the_service_keyring_is_accepted(world, gnupg_homes):
    _gpg_signing_key(world, gnupg_homes[0])
    signed = world.commit("signed with gpg", sign=True)
    result = sync_checkout(world.desired, config(world, verify=True), fetch=True)
    assert result.commit == signed == world.head()
    assert "Desk <desk@example.invalid>" in (result.signer or "")


def test_a_head_signed_by_a_gpg_key_the_service_does_not_know_is_refused(
    world, gnupg_homes, monkeypatch
):
    _gpg_signing_key(world, gnupg_homes[0])
    before = world.head()
    world.commit("signed with a key the service does not have", sign=True)
    monkeypatch.setenv("GNUPGHOME", str(gnupg_homes[1]))
    reason = refusal(world, verify=True)
    assert "has a signature that cannot be checked" in reason
    assert world.head() == before


# ------------------------------------------------------------------ git refuses to read

NOBODY = 65534


def _dubious(world):
    """Hand the checkout to another user, as when it was cloned by someone else."""
    if os.geteuid() != 0:
        pytest.skip("changing a directory's owner needs root")
    for path in [world.checkout, *world.checkout.rglob("*")]:
        os.lchown(path, NOBODY, NOBODY)
    probe = git(world.checkout, "status", check=False)
    if "dubious ownership" not in probe.stderr:
        pytest.skip(f"this git does not check ownership (safe.directory): {probe.stderr!r}")


def test_a_checkout_owned_by_another_user_is_reported_with_the_real_cause(world):
    _dubious(world)
    with pytest.raises(GitSourceError) as caught:
        sync_checkout(world.desired, config(world), fetch=True)
    message = str(caught.value)
    assert "detected dubious ownership" in message and "safe.directory" in message
    assert f"owned by uid {NOBODY}, running as uid 0" in message
    assert f"git config --global --add safe.directory {world.checkout}" in message
    assert "not inside a git checkout" not in message


def test_the_desired_states_git_facts_carry_the_ownership_problem_instead_of_not_in_git(world):
    _dubious(world)
    revision = git_revision(world.desired)
    assert revision.commit is None
    assert revision.problem is not None and "safe.directory" in revision.problem
    assert "safe.directory" in (load_desired_state(world.desired).git_problem or "")


def test_once_trusted_with_safe_directory_the_same_checkout_syncs(world, tmp_path):
    _dubious(world)
    git(tmp_path, "config", "--global", "--add", "safe.directory", str(world.checkout))
    merged = world.commit("merged")
    assert sync_checkout(world.desired, config(world), fetch=True).commit == merged


def test_validate_names_the_ownership_problem_instead_of_not_in_git(world):
    _dubious(world)
    result = CliRunner().invoke(cli, ["validate", str(world.desired)])
    assert result.exit_code == 0, result.output
    assert "git: git refuses to read" in result.output and "safe.directory" in result.output
    assert "not in git" not in result.output


def test_an_unreadable_git_directory_is_reported_as_permissions_not_as_outside_git(world):
    # git says "not a git repository" when it may not read .git/objects; root reads
    # everything, so the check's os.access is replaced by one that denies that directory.
    objects = world.checkout / ".git" / "objects"
    problem = unreadable_git_dir(world.desired, access=lambda p, _mode: p != objects)
    assert problem is not None
    assert problem.startswith(f"git cannot read {objects}: permission denied (owned by uid")
    assert unreadable_git_dir(world.desired) is None  # readable for real


def test_a_directory_outside_any_checkout_has_no_permission_problem(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert unreadable_git_dir(plain, access=lambda _p, _m: False) is None
