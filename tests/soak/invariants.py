"""Invariants the soak checks after every cycle and at the end, as pure functions of values.

Responsible for saying, from the simulator's own records (its state file and its journals of
every message received) and from the reconciler's store (read through its public API), what
must always hold whatever faults were injected: no orderRef placed twice at the broker; every
broker execution in the ledger exactly once and no fill the broker never made; ledger
positions (last snapshot + fills since) equal the broker's, or a LEDGER_BREAK was raised; no
order over a limit in force; the audit chain verifies; every cycle closed with an outcome.
Each check returns a list of violations (sentences naming the object), empty when it holds.
Must not talk to the gateway, write to the store or decide what the soak does next.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.status import CycleStatus

PLACE_ORDER = 3  # incoming TWS message id of placeOrder
REF_PREFIX = "rc-"
HEALTH_PREFIX = "rc-health-"
# Every cycle status but `running` closes a cycle.
CLOSED_STATUSES = frozenset(s.value for s in CycleStatus if s is not CycleStatus.RUNNING)


# ------------------------------------------------------------------ the broker's records


@dataclass(frozen=True)
class BrokerOrder:
    order_ref: str
    account: str
    con_id: int
    action: str
    quantity: float
    limit_price: float | None
    filled: float
    status: str
    client_id: int
    order_id: int

    @property
    def working(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted", "PendingSubmit", "PendingCancel")


@dataclass(frozen=True)
class BrokerExecution:
    exec_id: str
    order_ref: str
    account: str
    con_id: int
    side: str  # BOT | SLD
    shares: float


@dataclass(frozen=True)
class BrokerState:
    orders: tuple[BrokerOrder, ...]
    executions: tuple[BrokerExecution, ...]
    holdings: Mapping[str, Mapping[int, float]]  # account -> conId -> quantity

    def refs(self) -> set[str]:
        return {o.order_ref for o in self.orders}


def read_broker_state(path: Path) -> BrokerState:
    """The simulator's book as its state file holds it (written atomically after changes)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    orders = tuple(
        BrokerOrder(
            o["order_ref"], o["account"], int(o["con_id"]), o["action"],
            float(o["total_quantity"]), o.get("lmt_price"), float(o["filled"]), o["status"],
            int(o["client_id"]), int(o["order_id"]),
        )
        for o in data["orders"]
    )
    executions = tuple(
        BrokerExecution(e["exec_id"], e["order_ref"], e["account"], int(e["con_id"]), e["side"],
                        float(e["shares"]))
        for e in data["executions"]
    )
    holdings = {
        account: {int(h["con_id"]): float(h["quantity"]) for h in spec["holdings"]
                  if float(h["quantity"])}
        for account, spec in data["accounts"].items()
    }
    return BrokerState(orders, executions, holdings)


def placed_refs(lines: Iterable[str]) -> list[tuple[int, str]]:
    """(clientId, orderRef) of every placeOrder in journal lines (JSON, one entry each), in
    order. A killed simulator's last line may be cut short; it is skipped (the state file
    still has the order if it was accepted)."""
    placed: list[tuple[int, str]] = []
    for line in lines:
        if '"msg_id":3,' not in line or '"dir":"in"' not in line:
            continue  # cheap filter: journals are mostly market data and answers
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("dir") != "in" or entry.get("msg_id") != PLACE_ORDER:
            continue
        refs = [f for f in entry["fields"] if isinstance(f, str) and f.startswith(REF_PREFIX)]
        for ref in refs[:1]:
            placed.append((entry.get("client_id"), ref))
    return placed


class JournalScanner:
    """placeOrders of the simulators' journals (one file per simulator process), read
    incrementally: each call reads only what was appended since the last one."""

    def __init__(self) -> None:
        self._offsets: dict[Path, int] = {}
        self.placed: list[tuple[int, str]] = []

    def scan(self, paths: Iterable[Path]) -> list[tuple[int, str]]:
        for path in paths:
            if not path.exists():
                continue
            with path.open("rb") as journal:
                journal.seek(self._offsets.get(path, 0))
                data = journal.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            self._offsets[path] = self._offsets.get(path, 0) + len(complete)
            self.placed += placed_refs(complete.decode("utf-8", "replace").splitlines())
        return self.placed


# ------------------------------------------------------------------ checks


def orders_placed_once(placed: Sequence[tuple[int, str]], broker: BrokerState) -> list[str]:
    """No orderRef reached the broker twice (placeOrder messages or orders in its book)."""
    problems = [
        f"orderRef {ref} placed {n} times at the broker"
        for ref, n in sorted(Counter(ref for _, ref in placed).items())
        if n > 1 and not ref.startswith(HEALTH_PREFIX)
    ]
    problems += [
        f"orderRef {ref} is {n} orders in the broker's book"
        for ref, n in sorted(Counter(o.order_ref for o in broker.orders).items())
        if n > 1 and ref.startswith(REF_PREFIX)
    ]
    return problems


def executions_recorded_once(
    broker: BrokerState, ledger_exec_ids: Sequence[str], *, complete: bool
) -> list[str]:
    """Every ledger fill is a broker execution, recorded once; with `complete`, every broker
    execution of a reconciler order is in the ledger (checked once the run has settled)."""
    problems = [
        f"execution {exec_id} recorded {n} times in the ledger"
        for exec_id, n in sorted(Counter(ledger_exec_ids).items())
        if n > 1
    ]
    at_broker = {e.exec_id for e in broker.executions}
    problems += [
        f"ledger fill {exec_id} is no execution of the broker"
        for exec_id in sorted(set(ledger_exec_ids) - at_broker)
    ]
    if complete:
        recorded = set(ledger_exec_ids)
        problems += [
            f"broker execution {e.exec_id} ({e.order_ref} {e.side} {e.shares:g}) "
            "missing from the ledger"
            for e in broker.executions
            if e.order_ref.startswith(REF_PREFIX)
            and not e.order_ref.startswith(HEALTH_PREFIX)
            and e.exec_id not in recorded
        ]
    return problems


def positions_explained(
    account: str,
    ledger_positions: Mapping[int, float],
    broker_positions: Mapping[int, float],
    breaks_raised: set[int],
) -> list[str]:
    """Ledger positions (last snapshot + fills since) equal the broker's, or the reconciler
    raised a LEDGER_BREAK for that instrument."""
    problems = []
    for con_id in sorted(set(ledger_positions) | set(broker_positions)):
        ledger_qty = ledger_positions.get(con_id, 0.0)
        broker_qty = broker_positions.get(con_id, 0.0)
        if abs(ledger_qty - broker_qty) > 1e-6 and con_id not in breaks_raised:
            problems.append(
                f"{account} conId {con_id}: ledger says {ledger_qty:g}, broker holds "
                f"{broker_qty:g}, and no LEDGER_BREAK was raised"
            )
    return problems


@dataclass(frozen=True)
class Limits:
    """The limits of the RiskPolicy committed for a cycle."""

    max_order_notional: float
    max_orders_per_cycle: int


def orders_within_limits(
    new_orders: Sequence[BrokerOrder],
    limits: Limits,
    *,
    halted: bool,
    tolerance: float = 0.01,
) -> list[str]:
    """Orders a cycle placed: none while halted, none over maxOrderNotional at its limit
    price (the soak trades LMT orders only), at most maxOrdersPerCycle per account."""
    orders = [o for o in new_orders if not o.order_ref.startswith(HEALTH_PREFIX)]
    if halted and orders:
        return [f"{len(orders)} order(s) placed while halted: {[o.order_ref for o in orders]}"]
    problems = []
    for o in orders:
        price = o.limit_price or 0.0
        notional = price * o.quantity
        if notional > limits.max_order_notional * (1 + tolerance):
            problems.append(
                f"order {o.order_ref} {o.action} {o.quantity:g} @ {price:g} = {notional:.2f} "
                f"over maxOrderNotional {limits.max_order_notional:g}"
            )
    for account, n in sorted(Counter(o.account for o in orders).items()):
        if n > limits.max_orders_per_cycle:
            problems.append(
                f"{account}: {n} orders in one cycle over maxOrdersPerCycle "
                f"{limits.max_orders_per_cycle}"
            )
    return problems


def cycles_closed(statuses: Mapping[int, str], *, allow_open: Iterable[int] = ()) -> list[str]:
    """Every recorded cycle has a closing outcome (a killed one is closed by the next)."""
    allowed = set(allow_open)
    return [
        f"cycle {cycle_id} not closed (status {status!r})"
        for cycle_id, status in sorted(statuses.items())
        if cycle_id not in allowed and status not in CLOSED_STATUSES
    ]


def audit_chain(ok: bool, reason: str) -> list[str]:
    return [] if ok else [f"audit chain does not verify: {reason}"]
