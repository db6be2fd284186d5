"""`reconcile run` with a git source (RECONCILER_GIT_URL), end to end: real local git
repositories (bare remote, author clone, service checkout) and the simulator. A merge is
picked up by the next cycle, daemon included; anything not on the branch head, an unsigned
head when signatures are required, and a checkout git will not read are refused or fail
with the real cause, and nothing is sent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from e2e import Cli, base_env
from gitrepos import BRANCH, git, git_env, make_world, ssh_signing
from waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

ENABLED = {"ORDERS_ENABLED": "true"}


def _self_heal(desired):
    schedule = desired / "schedule.yaml"
    schedule.write_text(schedule.read_text().replace("selfHeal: false", "selfHeal: true"))


def _one_account(desired):
    (desired / "portfolios" / "global-balanced.yaml").unlink()


@pytest.fixture
def world(tmp_path, monkeypatch):
    for name, value in git_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return make_world(tmp_path)


@pytest.fixture
def cli(tmp_path, sim, world) -> Cli:
    env = {**base_env(tmp_path), **git_env(tmp_path), "RECONCILER_GIT_URL": str(world.remote)}
    return Cli(tmp_path, f"{sim.host}:{sim.port}", env)


def _run_once(cli, world, env=None):
    return cli("run", "--once", "--ignore-window", "--dir", str(world.desired), env=env)


def _reports(tmp_path) -> list[dict]:
    files = sorted((tmp_path / "reports").glob("*-cycle*.json"))
    return [json.loads(f.read_text()) for f in files]


def _commits(tmp_path) -> list[str]:
    reports = sorted(_reports(tmp_path), key=lambda r: r["cycle_id"])
    return [r["desired"]["git_commit"] for r in reports]


def test_run_once_fast_forwards_to_the_merged_commit_and_records_it(cli, world, tmp_path):
    first = world.remote_head()
    before = _run_once(cli, world)
    assert before.returncode == 0, (before.stdout, before.stderr)
    assert f"git source main of {world.remote}: at {first[:10]}, up to date" in before.stdout
    merged = world.commit("tighten the band")
    after = _run_once(cli, world)
    assert after.returncode == 0, (after.stdout, after.stderr)
    assert f"at {merged[:10]}, fast-forwarded from {first[:10]}" in after.stdout
    assert world.head() == merged
    assert _commits(tmp_path) == [first, merged]


def test_the_daemon_picks_up_a_merge_on_its_next_cycle_without_a_restart(cli, world, tmp_path):
    def every_second(desired):
        schedule = desired / "schedule.yaml"
        schedule.write_text(schedule.read_text().replace("interval: 15m", "interval: 1s"))

    first = world.commit("cycle every second", every_second)
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [
            *(sys.executable, "-m", "reconciler", "run", "--ignore-window"),
            *("--dir", str(world.desired), "--gateway", cli.gateway),
        ],
        cwd=tmp_path,
        env=cli.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: first in _commits(tmp_path), 60, f"a cycle at {first[:10]}")
        merged = world.commit("merged while the daemon runs")
        wait_until(lambda: merged in _commits(tmp_path), 60, f"a cycle at {merged[:10]}")
        assert daemon.poll() is None  # the same process: no restart
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        log.close()
    output = (tmp_path / "daemon.log").read_text()
    assert f"at {merged[:10]}, fast-forwarded from {first[:10]}" in output
    assert "Traceback" not in output
    commits = _commits(tmp_path)
    assert commits.index(merged) > commits.index(first)
    assert set(commits) <= {first, merged}


def test_run_once_refuses_a_checkout_moved_off_the_branch_exits_3_and_sends_nothing(
    cli, sim, world, tmp_path
):
    world.commit("self heal", _self_heal)
    git(world.checkout, "pull", "-q", "--ff-only")
    git(world.checkout, "checkout", "-q", "--detach")
    (world.desired / "NOTES.md").write_text("hand edit on the server\n")
    git(world.checkout, "add", "-A")
    git(world.checkout, "commit", "-q", "--no-gpg-sign", "-m", "not reviewed")
    off = world.head()
    world.commit("merged meanwhile")
    result = _run_once(cli, world, env=ENABLED)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert f"refused: HEAD {off[:10]}" in result.stdout
    assert f"is not on {BRANCH} of {world.remote}" in result.stdout
    assert "HEAD was moved to a commit that is not on main" in result.stdout
    assert sim.journal.messages("in", 3) == []
    assert _reports(tmp_path) == []


def test_run_once_refuses_an_unsigned_head_when_signatures_are_required(cli, sim, world, tmp_path):
    unsigned = world.commit("self heal, unsigned", _self_heal)
    result = _run_once(cli, world, env={**ENABLED, "RECONCILER_GIT_VERIFY": "true"})
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert f"the head commit {unsigned[:10]} of main of {world.remote} is not signed" in (
        result.stdout
    )
    assert world.head() != unsigned
    assert sim.journal.messages("in", 3) == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is needed to sign")
def test_run_once_applies_a_head_signed_by_a_trusted_key(cli, sim, world, tmp_path):
    ssh_signing(world, tmp_path)

    def one_account_self_heal(desired):
        _self_heal(desired)
        _one_account(desired)

    signed = world.commit("self heal, signed", one_account_self_heal, sign=True)
    result = _run_once(cli, world, env={**ENABLED, "RECONCILER_GIT_VERIFY": "true"})
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "signature good: desk@example.invalid" in result.stdout
    assert "applied: all 3 order(s) filled" in result.stdout
    assert len(sim.journal.messages("in", 3)) == 3
    assert _commits(tmp_path) == [signed]


# ------------------------------------------------------------------ git will not read it


def _hand_to_nobody(world):
    if os.geteuid() != 0:
        pytest.skip("changing a directory's owner needs root")
    for path in [world.checkout, *world.checkout.rglob("*")]:
        os.lchown(path, 65534, 65534)
    probe = git(world.checkout, "status", check=False)
    if "dubious ownership" not in probe.stderr:
        pytest.skip(f"this git does not check ownership (safe.directory): {probe.stderr!r}")


def test_run_once_on_a_checkout_owned_by_another_user_exits_1_naming_safe_directory(
    cli, sim, world
):
    world.commit("self heal", _self_heal)
    _hand_to_nobody(world)
    result = _run_once(cli, world, env=ENABLED)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"git refuses to read {world.checkout}" in result.stdout
    assert "safe.directory" in result.stdout and "owned by uid 65534" in result.stdout
    assert sim.journal.messages("in", 3) == []


def test_apply_needing_clean_git_on_a_checkout_owned_by_another_user_refuses_with_the_cause(
    cli, sim, world
):
    _hand_to_nobody(world)
    env = {**ENABLED, "RECONCILER_GIT_URL": "", "RECONCILER_REQUIRE_CLEAN_GIT": "true"}
    result = cli("apply", "--dir", str(world.desired), "--auto-approve", env=env)
    assert result.returncode == 3, (result.stdout, result.stderr)
    both = result.stdout + result.stderr
    assert "DESIRED_STATE_COMMITTED" in both and "dubious ownership" in both
    assert "not in a git repository" not in both
    assert sim.journal.messages("in", 3) == []
