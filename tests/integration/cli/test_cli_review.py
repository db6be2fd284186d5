"""The pull-request review flow end to end: README's commands against the simulator, the
Markdown comment on stdout only, `plan --base REF` on a real git repository, `plan` leaving a
fresh clone clean, DIRECTORY positional for apply, `--lock-timeout`, and colour only for a
terminal without NO_COLOR."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from e2e import base_env
from gitrepos import git, git_env, make_world
from readme_examples import readme_examples, write_files
from waiting import wait_until

from reconciler.broker import Broker
from reconciler.model.settings import Settings
from reconciler.store import open_store


def _state_outside(tmp_path: Path) -> dict[str, str]:
    """No RECONCILER_STATE_DIR: the default (XDG) state directory, under tmp_path/home."""
    env = {k: v for k, v in base_env(tmp_path).items() if k != "RECONCILER_STATE_DIR"}
    env.pop("RECONCILER_REPORTS_DIR", None)
    return {**env, "HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "xdg")}


def _reconcile(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Error handling fields" not in result.stderr, result.stderr
    return result


def test_readme_review_flow_runs_against_the_simulator(tmp_path, sim):
    examples = readme_examples()
    work = tmp_path / "repo"
    work.mkdir()
    write_files(examples, work)
    env = {
        **_state_outside(tmp_path),
        "IB_GATEWAY_HOST": sim.host,
        "IB_GATEWAY_PORT": str(sim.port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for line in examples.commands:
        done = subprocess.run(
            ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        allowed = {0, 2} if "--detailed-exitcode" in line else {0}
        assert done.returncode in allowed, (line, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
    comment = (work / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith("### ib-reconciler plan: ")
    assert "Plan written" not in comment  # status lines go to stderr
    assert "| On merge | Schedule `default` has `selfHeal: true`" in comment
    assert not (work / ".reconciler").exists()  # state lives in the XDG state directory
    assert (tmp_path / "xdg" / "ib-reconciler" / "reconciler.db").is_file()


def _change(desired: Path) -> None:
    us_core = desired / "portfolios" / "us-core.yaml"
    text = us_core.read_text(encoding="utf-8")
    text = text.replace("{symbol: VTI, weight: 50%}", "{symbol: VTI, weight: 45%}")
    text = text.replace("    - {symbol: SGOV, quantity: 100}\n", "    - {symbol: GLD, weight: 5%}\n")
    us_core.write_text(text, encoding="utf-8")
    policy = desired / "risk" / "default.yaml"
    text = policy.read_text(encoding="utf-8").replace(
        "maxOrderNotional: 60000", "maxOrderNotional: 10000"
    )
    policy.write_text(text, encoding="utf-8")


@pytest.fixture
def pull_request(tmp_path, monkeypatch):
    """A fresh clone with main at the example and a branch that changes it (one commit)."""
    for name, value in git_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    world = make_world(tmp_path)
    git(world.author, "checkout", "-q", "-b", "change")
    world.commit("lower VTI, tighten the order limit, GLD for SGOV", _change, push=False)
    return world.author


EXPECTED = [
    "Portfolio us-core: targets GLD added (weight 5%)",
    "Portfolio us-core: targets SGOV removed (quantity 100)",
    "Portfolio us-core: targets VTI weight 50% → 45%",
    "RiskPolicy default: maxOrderNotional 60,000 → 10,000",
]


def test_plan_against_a_git_base_names_yaml_fields_and_leaves_the_clone_clean(
    tmp_path, pull_request
):
    env = {**_state_outside(tmp_path), **git_env(tmp_path)}
    args = ("plan", "desired_state", "--base", "origin/main", "--gateway", "sim")
    text = _reconcile(pull_request, env, *args)
    assert text.returncode == 0, text.stderr
    for line in EXPECTED:
        assert line in text.stdout
    markdown = _reconcile(pull_request, env, *args, "--format", "markdown")
    assert "#### Desired-state changes (against origin/main (" in markdown.stdout
    for line in EXPECTED:
        assert f"- {line}" in markdown.stdout
    as_json = json.loads(_reconcile(pull_request, env, *args, "--format", "json").stdout)
    assert as_json["desired_changes"]["changes"] == EXPECTED
    assert as_json["desired_changes"]["against"].startswith("origin/main (")
    everything = text.stdout + markdown.stdout
    assert "max_order_notional" not in everything and "riskPolicy." not in everything
    status = git(pull_request, "status", "--porcelain", "--untracked-files=all")
    assert status.stdout == ""  # plan wrote nothing into the repository


def test_plan_against_an_unknown_base_says_how_to_fetch_it(tmp_path, pull_request):
    env = {**_state_outside(tmp_path), **git_env(tmp_path)}
    result = _reconcile(
        pull_request, env, "plan", "desired_state", "--base", "origin/nope", "--gateway", "sim"
    )
    assert result.returncode == 1
    assert "--base origin/nope: no such revision" in result.stderr and "git fetch" in result.stderr


def test_apply_takes_the_directory_positionally_and_waits_for_a_held_lock(cli, desired_dir):
    store = open_store(f"sqlite:///{cli.workdir / '.reconciler' / 'reconciler.db'}")
    with store.account_lock(["DU0000001"], holder="another-host:1"):
        started = time.monotonic()
        held = cli("apply", str(desired_dir), "--auto-approve", "--lock-timeout", "1s")
        waited = time.monotonic() - started
    assert held.returncode == 3, held.stderr
    assert "waiting up to 1s for the account lock" in held.stderr
    assert "lock held" in held.stderr and waited >= 1.0
    free = cli("apply", str(desired_dir), "--auto-approve", "--lock-timeout", "30s")
    assert free.returncode == 0, free.stderr
    assert "waiting" not in free.stderr


def _on_a_terminal(cwd: Path, env: dict[str, str], *args: str) -> bytes:
    """Run with stdout on a pseudo-terminal; everything it printed there."""
    parent, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *args],
            cwd=cwd,
            env=env,
            stdout=child,
            stderr=subprocess.DEVNULL,
        )
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
        return b"".join(chunks)
    finally:
        os.close(parent)


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path, desired_dir):
    env = {**base_env(tmp_path), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    coloured = _on_a_terminal(tmp_path, env, "show", "risk", str(desired_dir))
    assert b"\x1b[" in coloured
    plain = _on_a_terminal(tmp_path, {**env, "NO_COLOR": "1"}, "show", "risk", str(desired_dir))
    assert b"\x1b[" not in plain and b"max_order_notional" in plain
    piped = _reconcile(tmp_path, env, "show", "risk", str(desired_dir))
    assert "\x1b[" not in piped.stdout and "60,000" in piped.stdout


def test_plan_runs_while_the_daemons_client_id_is_connected(cli, desired_dir, sim):
    """A scheduled cycle holds IB_CLIENT_ID (17): `plan` uses its own id and succeeds."""
    connected, stop = threading.Event(), threading.Event()

    async def daemon() -> None:
        settings = Settings(gateway_port=sim.port, client_id=17, connect_timeout=10.0)
        async with await Broker.connect(settings, readonly=True):
            connected.set()
            await asyncio.to_thread(stop.wait)

    holder = threading.Thread(target=lambda: asyncio.run(daemon()))
    holder.start()
    try:
        assert connected.wait(30)
        result = cli("plan", str(desired_dir))
    finally:
        stop.set()
        holder.join(30)
    assert result.returncode == 0, result.stderr
    assert sim.journal.messages("in", client_id=18)


def test_apply_waiting_for_the_lock_goes_ahead_once_the_holder_releases_it(cli, desired_dir):
    store = open_store(f"sqlite:///{cli.workdir / '.reconciler' / 'reconciler.db'}")
    lease = store.account_lock(["DU0000001"], holder="another-host:1")
    process = cli.popen("apply", str(desired_dir), "--auto-approve", "--lock-timeout", "2m")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("waiting up to 120s for the account lock" in line for line in lines),
            timeout=60,
            what="apply to start waiting for the lock",
            abort=lambda: process.poll() is not None and f"apply exited {process.returncode}",
        )
    finally:
        lease.release()
    out = process.stdout.read()
    assert process.wait(timeout=90) is not None
    reader.join(10)
    assert process.returncode == 0, "".join(lines)
    assert "dry run" in out.lower()
