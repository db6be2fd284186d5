"""Instrument resolution rules and the lock file's data.

Responsible for: how a desired-state `Instrument` or a `ContractInfo` becomes an IB contract
request, how the gateway's contract details for one request are judged (resolved, unknown,
ambiguous with candidates), how a lock entry is compared with what the gateway reports now,
and `lock_entries` (resolved contracts -> `LockedInstrument` rows for
`instruments.lock.yaml`). Pure: the requests themselves are sent by `reconciler.broker.
connection`; this module must not do I/O or import a client library at module level (the
library module is passed in where an IB object is built).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from reconciler.broker import convert
from reconciler.broker.errors import ResolutionProblem
from reconciler.model.actual import ContractInfo, Position
from reconciler.model.desired import Instrument, LockedInstrument

UNKNOWN_CONTRACT = 200  # "No security definition has been found for the request"


def request_for_instrument(lib: ModuleType, instrument: Instrument) -> Any:
    """The contract-details request for an instrument as the operator named it."""
    if instrument.con_id:
        return lib.Contract(conId=instrument.con_id, exchange=instrument.exchange)
    return lib.Contract(
        symbol=instrument.symbol,
        secType=instrument.sec_type,
        exchange=instrument.exchange,
        primaryExchange=instrument.primary_exchange or "",
        currency=instrument.currency,
    )


def request_for_locked(lib: ModuleType, locked: LockedInstrument) -> Any:
    return lib.Contract(conId=locked.con_id, exchange=locked.exchange or "SMART")


def request_for_con_id(lib: ModuleType, con_id: int, exchange: str = "SMART") -> Any:
    return lib.Contract(conId=con_id, exchange=exchange)


def ib_contract(lib: ModuleType, info: ContractInfo) -> Any:
    """The IB contract to quote or trade a resolved instrument."""
    return lib.Contract(
        conId=info.con_id,
        symbol=info.symbol,
        secType=info.sec_type,
        exchange=info.exchange or "SMART",
        primaryExchange=info.primary_exchange,
        currency=info.currency,
    )


def judge(
    key: str,
    requested_exchange: str,
    details: Sequence[Any],
    errors: Sequence[tuple[int, str]],
    *,
    by_con_id: bool = False,
) -> ContractInfo | ResolutionProblem:
    """What one contract-details answer means for the instrument `key`.

    Several details for a conId request are the same contract listed on several exchanges,
    so they are not ambiguous: the one on the requested exchange wins.
    """
    if not details:
        codes = {code for code, _ in errors}
        if not errors or UNKNOWN_CONTRACT in codes:
            return ResolutionProblem(
                key, "unknown", "no security definition found at the gateway (error 200)"
            )
        text = "; ".join(f"error {code}: {message}" for code, message in errors)
        return ResolutionProblem(key, "error", f"contract details request failed ({text})")
    if len(details) > 1 and not by_con_id:
        candidates = tuple(
            sorted(
                (convert.candidate(d) for d in details),
                key=lambda c: (c.primary_exchange, c.exchange, c.con_id),
            )
        )
        return ResolutionProblem(
            key,
            "ambiguous",
            f"ambiguous: {len(details)} contracts match; pin primaryExchange, currency or conId",
            candidates=candidates,
        )
    chosen = next((d for d in details if d.contract.exchange == requested_exchange), details[0])
    return convert.contract_info(chosen, requested_exchange)


LOCK_FIELDS = (
    ("symbol", "symbol"),
    ("sec_type", "sec_type"),
    ("primary_exchange", "primary_exchange"),
    ("currency", "currency"),
    ("min_tick", "min_tick"),
    ("size_increment", "size_increment"),
)


def lock_differences(
    instrument: Instrument, locked: LockedInstrument, gateway: ContractInfo
) -> list[ResolutionProblem]:
    """Every way a lock entry disagrees with the desired instrument or the gateway today."""
    key = instrument.key
    problems: list[ResolutionProblem] = []
    if instrument.con_id and instrument.con_id != locked.con_id:
        problems.append(
            _mismatch(key, "con_id", instrument.con_id, locked.con_id, "desired state pins")
        )
    for name, value in (
        ("symbol", instrument.symbol),
        ("sec_type", instrument.sec_type),
        ("currency", instrument.currency),
    ):
        if getattr(locked, name) != value:
            problems.append(
                _mismatch(key, name, value, getattr(locked, name), "desired state names")
            )
    for lock_field, info_field in LOCK_FIELDS:
        was, now = getattr(locked, lock_field), getattr(gateway, info_field)
        if isinstance(was, float) or isinstance(now, float):
            if abs(float(was) - float(now)) > 1e-9:
                problems.append(_mismatch(key, lock_field, was, now, "gateway"))
        elif (was or "") != (now or ""):
            problems.append(_mismatch(key, lock_field, was, now, "gateway"))
    return problems


def _mismatch(key: str, field: str, a: object, b: object, source: str) -> ResolutionProblem:
    if source == "gateway":
        message = f"lock no longer matches the gateway: {field} locked={a!r} gateway={b!r}"
        return ResolutionProblem(key, "lock", message, field=field, locked=a, gateway=b)
    message = f"lock disagrees with the desired state: {field} {source} {a!r}, lock has {b!r}"
    return ResolutionProblem(key, "lock", message, field=field, locked=b, gateway=a)


def trusted_lock_entry(
    instrument: Instrument, locked: LockedInstrument
) -> ContractInfo | list[ResolutionProblem]:
    """A committed lock entry taken as it is (no request): the contract it names, or how it
    disagrees with the desired state. The gateway's side is verified by `reconcile lock
    --check`, by the held positions (`held_lock_problems`) and, for traded instruments in a
    scheduled window, by their contract details."""
    info = ContractInfo(
        con_id=locked.con_id,
        symbol=locked.symbol,
        sec_type=locked.sec_type,
        exchange=locked.exchange,
        primary_exchange=locked.primary_exchange,
        currency=locked.currency,
        min_tick=locked.min_tick,
        size_increment=locked.size_increment,
    )
    return lock_differences(instrument, locked, info) or info


def held_lock_problems(
    lock: Mapping[str, LockedInstrument], positions: Iterable[Position]
) -> list[ResolutionProblem]:
    """Where a held position's contract (which the gateway sends with every position)
    contradicts the lock entry of the same conId: symbol, security type or currency."""
    by_con_id = {entry.con_id: entry for entry in lock.values()}
    problems: list[ResolutionProblem] = []
    seen: set[int] = set()
    for p in positions:
        entry = by_con_id.get(p.con_id)
        if entry is None or p.con_id in seen:
            continue
        seen.add(p.con_id)
        for name in ("symbol", "sec_type", "currency"):
            was, now = getattr(entry, name), getattr(p, name)
            if (was or "") != (now or ""):
                problems.append(_mismatch(entry.key, name, was, now, "gateway"))
    return problems


def lock_missing(key: str, con_id: int) -> ResolutionProblem:
    return ResolutionProblem(
        key,
        "lock",
        f"locked conId {con_id} is no longer known to the gateway",
        field="con_id",
        locked=con_id,
        gateway=None,
    )


def lock_entries(resolved: Mapping[str, ContractInfo]) -> list[LockedInstrument]:
    """Lock rows for resolved instruments, sorted by key (stable, reviewable diffs)."""
    return [
        LockedInstrument(
            key=key,
            con_id=info.con_id,
            symbol=info.symbol,
            sec_type=info.sec_type,
            exchange=info.exchange,
            primary_exchange=info.primary_exchange,
            currency=info.currency,
            min_tick=info.min_tick,
            size_increment=info.size_increment,
        )
        for key, info in sorted(resolved.items())
    ]
