"""The reconciler runs under the system-call sandbox that systemd/reconcile.service declares.

Responsible for rebuilding, with libseccomp, the three seccomp filters systemd derives from the
unit (SystemCallFilter= + SystemCallErrorNumber=, MemoryDenyWriteExecute=,
RestrictAddressFamilies=) and running `reconcile demo` (simulator over TCP, both client
libraries) and git beneath them, so that a dependency needing writable+executable memory or a
filtered system call fails here rather than at 09:35 on a production host. Must not need a
running systemd; it does not cover the mount/user namespaces (ProtectSystem=, PrivateUsers=),
which only systemd can set up. Skips, saying why, where libseccomp or systemd-analyze is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "reconcile.service"
ANALYZE = shutil.which("systemd-analyze")
LIBSECCOMP = ctypes.util.find_library("seccomp")
DECODE_FAILURE_MARKERS = ("Error handling fields", "Error for ")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux-only"),
    pytest.mark.skipif(
        ANALYZE is None, reason="systemd-analyze is not installed: cannot expand @syscall sets"
    ),
    pytest.mark.skipif(LIBSECCOMP is None, reason="libseccomp is not installed"),
]

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_GE = 5
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def unit_settings(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(), flags=re.MULTILINE)


def syscall_sets() -> dict[str, list[str]]:
    out = subprocess.run(
        [ANALYZE or "", "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    sets: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("@"):
            current = sets.setdefault(line.strip(), [])
        elif line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return sets


def allowed_syscalls() -> set[str]:
    """systemd's reading of the unit's SystemCallFilter= lines: the first is an allow list
    (plus @default, which systemd always adds), each later `~` line removes from it."""
    sets = syscall_sets()

    def expand(names: list[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            found |= expand(sets[name]) if name.startswith("@") else {name}
        return found

    lines = unit_settings("SystemCallFilter")
    assert lines and not lines[0].startswith("~"), "the unit's filter is an allow list"
    allowed = expand([*lines[0].split(), "@default"])
    for line in lines[1:]:
        assert line.startswith("~")
        allowed -= expand(line[1:].split())
    return allowed


class Sandbox:
    """The unit's seccomp filters, built in the parent and loaded in the child before exec."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(LIBSECCOMP, use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ArgCmp),
        ]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self.lib = lib
        # Order matters: the allow list comes last so that loading the others stays allowed.
        self.filters = [self._write_execute(), self._address_families(), self._allow_list()]

    def _rule(self, ctx: int, action: int, name: str, *cmps: tuple[int, int, int, int]) -> None:
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a syscall on this architecture
            return
        array = (ArgCmp * len(cmps))(*[ArgCmp(*c) for c in cmps]) if cmps else None
        assert self.lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array) == 0, name

    def _allow_list(self) -> int:
        assert unit_settings("SystemCallErrorNumber") == ["EPERM"]
        ctx = self.lib.seccomp_init(scmp_act_errno(errno.EPERM))
        for name in sorted(allowed_syscalls()):
            self._rule(ctx, SCMP_ACT_ALLOW, name)
        return ctx

    def _write_execute(self) -> int:
        # systemd's MemoryDenyWriteExecute=: no W+X mapping, no later gain of PROT_EXEC.
        assert unit_settings("MemoryDenyWriteExecute") == ["true"]
        ctx = self.lib.seccomp_init(SCMP_ACT_ALLOW)
        deny = scmp_act_errno(errno.EPERM)
        wx = PROT_WRITE | PROT_EXEC
        self._rule(ctx, deny, "mmap", (2, SCMP_CMP_MASKED_EQ, wx, wx))
        self._rule(ctx, deny, "mprotect", (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        self._rule(ctx, deny, "pkey_mprotect", (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        self._rule(ctx, deny, "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
        return ctx

    def _address_families(self) -> int:
        (families,) = unit_settings("RestrictAddressFamilies")
        allowed = {getattr(socket, name) for name in families.split()}
        ctx = self.lib.seccomp_init(SCMP_ACT_ALLOW)
        deny = scmp_act_errno(errno.EAFNOSUPPORT)
        top = max(allowed) + 1
        for family in range(top):
            if family not in allowed:
                self._rule(ctx, deny, "socket", (0, SCMP_CMP_EQ, family, 0))
        self._rule(ctx, deny, "socket", (0, SCMP_CMP_GE, top, 0))
        return ctx

    def enter(self) -> None:
        """preexec_fn: runs in the forked child; libseccomp also sets no_new_privs."""
        for ctx in self.filters:
            if self.lib.seccomp_load(ctx) != 0:
                raise OSError(ctypes.get_errno(), "seccomp_load failed")


# Each probe does something the unit forbids; the answer shows whether the filter is active.
PROBES = r"""
import errno, json, mmap, os, socket, subprocess, sys

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return errno.errorcode[exc.errno]

rwx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
print(json.dumps({
    "write_execute_mapping": attempt(lambda: mmap.mmap(-1, 4096, prot=rwx)),
    "netlink_socket": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()),
    "set_cpu_affinity": attempt(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))),
    "chroot": attempt(lambda: os.chroot("/nonexistent-reconciler-probe")),
    "git_status": subprocess.run(
        ["git", "-C", sys.argv[1], "status", "--porcelain"], capture_output=True
    ).returncode,
}))
"""


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


def run_python(args: list[str], cwd: Path, sandbox: Sandbox | None, **env: str):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env},
        preexec_fn=sandbox.enter if sandbox else None,
    )


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "desired-state"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def test_the_probes_are_allowed_without_the_filters_and_denied_under_them(sandbox, git_repo):
    free = run_python(["-c", PROBES, str(git_repo)], git_repo.parent, None)
    jailed = run_python(["-c", PROBES, str(git_repo)], git_repo.parent, sandbox)
    assert free.returncode == 0 and jailed.returncode == 0, free.stderr + jailed.stderr
    assert json.loads(free.stdout) == {
        "write_execute_mapping": "allowed",
        "netlink_socket": "allowed",
        "set_cpu_affinity": "allowed",
        "chroot": "ENOENT",
        "git_status": 0,
    }
    assert json.loads(jailed.stdout) == {
        "write_execute_mapping": "EPERM",  # MemoryDenyWriteExecute=
        "netlink_socket": "EAFNOSUPPORT",  # RestrictAddressFamilies=
        "set_cpu_affinity": "EPERM",  # SystemCallFilter=~@resources
        "chroot": "EPERM",  # SystemCallFilter=~@privileged
        "git_status": 0,  # the clean-git gate's git still works
    }


@pytest.mark.parametrize("library", ["ib_async", "ib_insync"])
def test_reconcile_demo_completes_under_the_units_syscall_and_memory_filters(
    sandbox, tmp_path, library
):
    result = run_python(
        ["-m", "reconciler", "demo"], tmp_path, sandbox, RECONCILER_IB_LIBRARY=library
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Demo complete" in result.stdout
    assert not any(marker in output for marker in DECODE_FAILURE_MARKERS), output
