"""Fault catalogue: the reconciler's own storage fails (the store read-only, deleted, replaced
by an older copy, full; the reports directory unwritable).

Read-only directories and a full disk are real mounts (a read-only bind mount, a
size-limited tmpfs): the tests run as root, for whom permission bits are no obstacle. Where
mounting is not allowed the test is skipped with the reason. Each test runs `reconcile apply`
as a subprocess against the simulator and checks the ledger and the broker
(tests/faults/invariants.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from apply_helpers import exited, placed_orders
from invariants import broker_view, ledger_view, violations
from waiting import wait_until


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (`mount {' '.join(args)}`): {done.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` read-only for everyone (root included) while inside: a read-only bind mount."""
    _mount("--bind", str(directory), str(directory))
    try:
        _mount("-o", "remount,ro,bind", str(directory))
        yield
    finally:
        _umount(directory)


@contextlib.contextmanager
def small_filesystem(directory: Path, size: str = "4m") -> Iterator[None]:
    """A size-limited tmpfs mounted at `directory` while inside."""
    directory.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory))
    try:
        yield
    finally:
        _umount(directory)


def fill_up(directory: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free)."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        with contextlib.suppress(OSError):
            os.fsync(out.fileno())
    return filler


HEADROOM = 48 * 1024


def create_store(url: str) -> None:
    """A store with its schema (an empty ledger), made in this process."""
    from reconciler.store import open_store

    open_store(url).close()


def retarget(w, targets: dict[str, float]) -> None:
    from apply_helpers import write_desired_state

    write_desired_state(w.cli.desired_dir, targets)


def test_fault_store_read_only_then_nothing_is_sent_and_the_next_apply_converges(world, faulty):
    """Fault: the store's directory is mounted read-only. Guarantee: the apply cannot write
    its INTENTs, so it sends nothing and exits 1 naming the store; once writable, the next
    apply trades and converges."""
    w = world(faulty({"BND": 20}), {"BND": 10, "VEA": 10})
    store_dir = w.tmp_path / "db"
    store_dir.mkdir()
    w.cli.db_url = f"sqlite:///{store_dir / 'store.db'}"
    create_store(w.cli.db_url)

    with read_only(store_dir):
        result = w.cli.finish(w.cli.apply())

    assert result.returncode == 1, result.explain()
    assert "Traceback" not in result.stderr, result.explain()
    assert [r for r in broker_view(w.sim).placed_refs if r] == []
    again = w.cli.finish(w.cli.apply())
    assert again.returncode == 0, again.explain()
    w.safe(positions={"BND": 10, "VEA": 10})


def test_fault_store_deleted_while_orders_work_then_the_unknown_orders_refuse_the_apply(
    world, faulty
):
    """Fault: the apply dies with an order resting at the broker and its store is deleted.
    Guarantee: the next apply starts a new store, sees an `rc-` order working at the broker
    that its ledger does not know, and refuses (exit 3) without sending anything, rather
    than trading the same gap again. The only invariant broken is the lost INTENT."""
    w = world(faulty({}, closed=("VEA",)), {"VEA": 10})
    victim = w.cli.apply()
    wait_until(
        lambda: len(placed_orders(w.sim)) == 1, timeout=30, what="the buy", abort=exited(victim)
    )
    victim.kill()
    [orphan] = placed_orders(w.sim)
    (w.tmp_path / "store.db").unlink()

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 3, result.explain()
    assert orphan.order_ref in result.stderr, result.explain()
    broker = broker_view(w.sim)
    assert [r for r in broker.placed_refs if r] == [orphan.order_ref]
    assert violations(ledger_view(w.db_url), broker, settled=False) == [
        f"orderRef {orphan.order_ref} reached the broker without an INTENT in the ledger"
    ]


def test_fault_store_replaced_by_an_older_copy_then_fills_it_lacks_are_a_ledger_break_not_a_retrade(
    world, faulty
):
    """Fault: after an apply traded, the store is replaced by a copy taken before it.
    Guarantee: the next apply plans from the broker's positions (nothing to do, no second
    buy) and reports the positions its ledger cannot explain as a LEDGER_BREAK."""
    w = world(faulty({"BND": 20}), {"BND": 20})
    assert w.cli.finish(w.cli.apply()).returncode == 0
    store = w.tmp_path / "store.db"
    older = w.tmp_path / "older.db"
    shutil.copyfile(store, older)
    retarget(w, {"BND": 20, "VEA": 10})
    assert w.cli.finish(w.cli.apply()).returncode == 0
    shutil.copyfile(older, store)

    result = w.cli.finish(w.cli.apply())

    assert result.returncode == 0, result.explain()
    assert "nothing to do" in result.stdout, result.explain()
    assert "LEDGER_BREAK" in result.stderr and "VEA" in result.stderr, result.explain()
    broker = broker_view(w.sim)
    assert len([r for r in broker.placed_refs if r]) == 1, "the gap was traded again"
    assert broker.positions["DU0000001"] == {"BND": 20, "VEA": 10}
    assert "BREAK" in ledger_view(w.db_url).event_kinds


def test_fault_reports_directory_unwritable_then_nothing_is_sent(world, faulty):
    """Fault: the reports directory is mounted read-only. Guarantee: apply checks it before
    the first order: exit 1 naming the directory, nothing sent, nothing recorded as sent."""
    w = world(faulty({"BND": 20}), {"BND": 10})
    reports = w.tmp_path / "reports"
    reports.mkdir()

    with read_only(reports):
        result = w.cli.finish(w.cli.apply())

    assert result.returncode == 1, result.explain()
    assert "reports" in result.stderr, result.explain()
    ledger, broker = w.safe(positions={"BND": 20})
    assert ledger.orders == {} and [r for r in broker.placed_refs if r] == []


def test_fault_disk_full_for_the_store_then_nothing_is_sent_without_its_intent(world, faulty):
    """Fault: the store lives on a small filesystem with 48 KiB left when the apply starts
    (enough to open the store, not to record the cycle).
    Guarantee: no order reaches the broker without its INTENT committed: the apply fails
    (exit 1) before sending or leaves only orders it recorded; once space is freed the next
    apply resolves them and converges without sending any orderRef twice."""
    w = world(faulty({"BND": 20}), {"BND": 10, "VEA": 10})
    disk = w.tmp_path / "small"
    with small_filesystem(disk):
        w.cli.db_url = f"sqlite:///{disk / 'store.db'}"
        create_store(w.cli.db_url)
        filler = fill_up(disk)
        with filler.open("r+b") as out:
            out.truncate(max(0, filler.stat().st_size - HEADROOM))

        full = w.cli.finish(w.cli.apply())

        filler.unlink()  # (reading the ledger needs a little space too)
        assert "Traceback" not in full.stderr, full.explain()
        ledger, broker = ledger_view(w.db_url), broker_view(w.sim)
        assert {r for r in broker.placed_refs if r} <= set(ledger.orders), (
            "an order reached the broker without its INTENT\n" + full.explain()
        )
        again = w.cli.finish(w.cli.apply())
        assert again.returncode == 0, again.explain()
        w.safe(positions={"BND": 10, "VEA": 10})
