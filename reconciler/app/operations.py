"""Operator actions that talk to the gateway outside a cycle: resolving instruments for the
lockfile and cancelling the reconciler's open orders (the kill switch's `--cancel-open`):
its own, a dead process's (with that client id), a running apply's (left to it: it sees the
halt), then the documented fallbacks (master client id, global cancel on request).

Must not plan or place orders. See ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.cycle.common import CycleError, connect, target_instruments
from reconciler.model.actual import OpenOrder
from reconciler.model.clock import Clock
from reconciler.model.desired import DesiredState, LockedInstrument
from reconciler.model.ports import BrokerPort, StorePort
from reconciler.model.settings import Settings
from reconciler.util.polling import poll_until_async


async def lock_instruments(
    desired: DesiredState, settings: Settings, *, clock: Clock
) -> list[LockedInstrument]:
    """Resolve every target afresh (ignoring an existing lock) into lockfile entries."""
    from reconciler.broker.contracts import lock_entries
    from reconciler.broker.errors import BrokerError

    broker = await connect(settings, readonly=True, clock=clock)
    try:
        resolved = await broker.resolve(target_instruments(desired), lock=None)
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    finally:
        await broker.disconnect()
    return lock_entries(resolved)


async def check_lock(desired: DesiredState, settings: Settings, *, clock: Clock) -> list[str]:
    """Every committed lock entry verified against the gateway by conId (a contract-details
    request each, which cycles do not make); the disagreements, one line each (none: ok)."""
    from reconciler.broker.errors import BrokerError, LockMismatch, ResolutionError

    broker = await connect(settings, readonly=True, clock=clock)
    try:
        await broker.resolve(target_instruments(desired), lock=desired.lock)
    except (LockMismatch, ResolutionError) as exc:
        return [p.render() for p in exc.problems]
    except BrokerError as exc:
        raise CycleError(str(exc)) from exc
    finally:
        await broker.disconnect()
    missing = [i.key for i in target_instruments(desired) if i.key not in desired.lock]
    return [f"{key}: not in the lockfile (run `reconcile lock`)" for key in missing]


@dataclass(frozen=True)
class WorkingOrder:
    """A reconciler order the gateway still lists as working."""

    order_ref: str
    client_id: int
    status: str
    remaining: float

    def render(self) -> str:
        return (
            f"{self.order_ref} (client id {self.client_id}, {self.status or 'no status'}, "
            f"{self.remaining:g} left)"
        )


@dataclass(frozen=True)
class CancelReport:
    """What `cancel_open_orders` did: the reconciler's orders (orderRef rc-...) it found
    working, which of them the broker now lists as cancelled, which finished otherwise (e.g.
    filled before the cancel arrived) and which are still working."""

    client_id: int
    found: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    finished: tuple[tuple[str, str], ...] = ()  # (orderRef, final status other than Cancelled)
    still_working: tuple[WorkingOrder, ...] = ()
    steps: tuple[str, ...] = ()
    error: str | None = None  # the gateway failed midway; still_working is as last seen


def in_flight_refs(store: StorePort) -> list[str]:
    """orderRefs of the unresolved orders of cycles still running (read before the halt is
    recorded: a running apply may cancel them before `cancel_open_orders` looks)."""
    running = {c.id for c in store.list_cycles(limit=200) if c.status == "running"}
    return [i.order_ref for i in store.unresolved_intents() if i.cycle_id in running]


async def cancel_open_orders(
    settings: Settings,
    *,
    clock: Clock | None = None,
    client_id: int | None = None,
    expected_refs: Iterable[str] = (),
    timeout: float = 15.0,
    owner_grace: float = 5.0,
    global_cancel: bool = False,
    poll_seconds: float = 0.25,
) -> CancelReport:
    """Cancel every open order this reconciler placed (orderRef rc-...), from outside the
    process that placed them; the halt must be recorded first (a running apply then cancels
    its own orders within about a second).

    Connects with `client_id` (default: `settings.operator_client_id`, never the apply's),
    lists every client's open orders, and cancels: its own at once; those of a client id
    nobody holds any more (a killed apply's) by connecting with that id; those of a running
    owner are left to it for up to `owner_grace` seconds when a fallback is configured, else
    until `timeout`. Fallbacks, in order: the gateway's master client id
    (`settings.master_client_id`), then `reqGlobalCancel` only when `global_cancel` is True
    (it cancels EVERY open order of the account, manual ones included). Waits (bounded by
    `timeout`) until the gateway no longer lists them. Raises CycleError only when the
    gateway cannot be reached at all; otherwise returns a report naming what is still working.
    `expected_refs` (see `in_flight_refs`) are reported too when the broker lists them as
    completed: their owner cancelled them before this connection looked.
    """
    from reconciler.broker.errors import BrokerError
    from reconciler.model.clock import SystemClock

    clock = clock or SystemClock()
    own_id = settings.operator_client_id if client_id is None else client_id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        operator = await _connect_as(settings, own_id, clock)
    except BrokerError as exc:
        raise CycleError(f"could not connect with client id {own_id}: {exc}") from exc
    run = _CancelRun(operator, settings, clock, loop, poll_seconds)
    try:
        return await run.cancel_all(deadline, owner_grace, global_cancel, set(expected_refs))
    except BrokerError as exc:
        return run.report(error=str(exc))
    finally:
        await operator.disconnect()


async def _connect_as(
    settings: Settings, client_id: int, clock: Clock, timeout: float | None = None
) -> BrokerPort:
    from reconciler.broker import Broker

    return await Broker.connect(
        settings, readonly=False, client_id=client_id, clock=clock, timeout=timeout
    )


class _CancelRun:
    """One `cancel_open_orders`: the operator's connection and what it has seen so far."""

    def __init__(
        self,
        operator: BrokerPort,
        settings: Settings,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        poll: float,
    ) -> None:
        self.operator = operator
        self.settings = settings
        self.clock = clock
        self.loop = loop
        self.poll = poll
        # None: an expected order seen only among the completed ones
        self.found: dict[str, OpenOrder | None] = {}
        self.working: dict[str, OpenOrder] = {}
        self.finished: dict[str, str] = {}
        self.steps: list[str] = []

    async def cancel_all(
        self, deadline: float, owner_grace: float, global_cancel: bool, expected: set[str]
    ) -> CancelReport:
        ours = [o for o in await self.operator.open_orders() if o.order_ref.startswith("rc-")]
        self.working = {o.order_ref: o for o in ours}
        self.found = dict(self.working)
        if not ours:
            await self._finish(expected)
            return self.report()
        own = [o for o in ours if o.client_id == self.operator.client_id]
        await self._cancel_with(self.operator, own, f"client id {self.operator.client_id}")
        for owner_id in sorted({o.client_id for o in ours} - {self.operator.client_id}):
            await self._cancel_as_owner(owner_id, [o for o in ours if o.client_id == owner_id])
        master = self.settings.master_client_id
        fallback = (master is not None and master != self.operator.client_id) or global_cancel
        owners_until = min(deadline, self.loop.time() + owner_grace) if fallback else deadline
        await self._wait_gone(owners_until)
        if self.working and master is not None and master != self.operator.client_id:
            await self._cancel_as_master(master, deadline)
        if self.working and global_cancel:
            await self.operator.global_cancel()
            self.steps.append(
                "reqGlobalCancel sent: the gateway cancels EVERY open order of its accounts, "
                "manual ones included"
            )
        await self._wait_gone(deadline)
        await self._finish(expected)
        return self.report()

    async def _finish(self, expected: set[str]) -> None:
        """How each order that stopped working ended, from the broker's completed orders."""
        completed = {
            c.order_ref: c.status
            for c in await self.operator.completed_orders()
            if c.order_ref in self.found or c.order_ref in expected
        }
        for ref in set(self.found) | set(completed):
            if ref not in self.working:
                self.finished[ref] = completed.get(ref, "no longer listed as working")
                self.found.setdefault(ref, None)

    def report(self, error: str | None = None) -> CancelReport:
        cancelled = tuple(sorted(r for r, s in self.finished.items() if "Cancel" in s))
        return CancelReport(
            client_id=self.operator.client_id,
            found=tuple(sorted(self.found)),
            cancelled=cancelled,
            finished=tuple(sorted((r, s) for r, s in self.finished.items() if r not in cancelled)),
            still_working=tuple(
                WorkingOrder(o.order_ref, o.client_id, o.status, o.remaining)
                for _, o in sorted(self.working.items())
            ),
            steps=tuple(self.steps),
            error=error,
        )

    async def _cancel_with(
        self, broker: BrokerPort, orders: Iterable[OpenOrder], who: str, *, as_master: bool = False
    ) -> None:
        from reconciler.broker.errors import BrokerError

        sent = 0
        for order in orders:
            try:
                await broker.cancel_open_order(order, as_master=as_master)
                sent += 1
            except BrokerError as exc:  # e.g. it finished meanwhile; the wait tells
                self.steps.append(f"{order.order_ref}: cancel not sent ({exc})")
        if sent:
            self.steps.append(f"cancel sent for {sent} order(s) with {who}")

    async def _cancel_as_owner(self, owner_id: int, orders: list[OpenOrder]) -> None:
        """Orders of a client id nobody holds any more (its process is gone) are cancelled
        with that id; a connected owner (error 326) cancels its own when it sees the halt."""
        from reconciler.broker.errors import BrokerError, ClientIdInUse

        try:
            owner = await _connect_as(
                self.settings, owner_id, self.clock, timeout=min(self.settings.connect_timeout, 5)
            )
        except ClientIdInUse:
            self.steps.append(
                f"client id {owner_id} is connected (a running apply or daemon): left to it, "
                "it cancels its working orders once it sees the halt"
            )
            return
        except BrokerError as exc:
            self.steps.append(f"could not connect as client id {owner_id}: {exc}")
            return
        try:
            await self._cancel_with(owner, orders, f"client id {owner_id} (its process is gone)")
            # The cancels must leave the client before its connection closes.
            await self._wait_gone(self.loop.time() + 5.0, {o.order_ref for o in orders})
        finally:
            await owner.disconnect()

    async def _cancel_as_master(self, master_id: int, deadline: float) -> None:
        from reconciler.broker.errors import BrokerError

        try:
            master = await _connect_as(
                self.settings, master_id, self.clock, timeout=min(self.settings.connect_timeout, 5)
            )
        except BrokerError as exc:
            self.steps.append(f"could not connect as the master client id {master_id}: {exc}")
            return
        try:
            left = list(self.working.values())
            await self._cancel_with(
                master, left, f"the master client id {master_id}", as_master=True
            )
            await self._wait_gone(
                min(deadline, self.loop.time() + 5.0), {o.order_ref for o in left}
            )
        finally:
            await master.disconnect()

    async def _wait_gone(self, until: float, refs: set[str] | None = None) -> None:
        """Poll the gateway's open orders until `refs` (default: all still working) are no
        longer listed or `until` (event-loop time) passes."""

        async def gone() -> bool:
            listed = {o.order_ref: o for o in await self.operator.open_orders()}
            self.working = {r: listed[r] for r in self.working if r in listed}
            waiting = set(self.working) if refs is None else refs & set(self.working)
            return not waiting

        # Polling the gateway's open orders: it sends no event when another client's order ends.
        await poll_until_async(
            gone,
            timeout=max(0.0, until - self.loop.time()),
            interval=self.poll,
            monotonic=self.loop.time,
        )
