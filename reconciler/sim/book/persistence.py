"""The simulated book as JSON-able state and back (what ``--state`` files hold).

Responsible for the state layout (version, id counters, accounts, orders with their latency
flags, executions, price overrides) and for reading it back into records, accepting files
written before newer order fields existed. Must not touch files (``reconciler.sim.state``
writes them) or decide anything about the records it restores (see ARCHITECTURE.md at the
repository root).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from reconciler.sim.book.records import Account, Holding, SimExecution, SimOrder

STATE_VERSION = 1


@dataclass
class BookState:
    """What a state file restores, as records."""

    next_perm_id: int
    exec_seq: int
    client_next_ids: dict[int, int]
    accounts: dict[str, Account]
    orders: list[SimOrder]
    executions: list[SimExecution]
    prices: dict


def dump_state(state: BookState) -> dict:
    return {
        "version": STATE_VERSION,
        "next_perm_id": state.next_perm_id,
        "exec_seq": state.exec_seq,
        "client_next_ids": {str(k): v for k, v in state.client_next_ids.items()},
        "accounts": {
            acc.account_id: {
                "base_currency": acc.base_currency,
                "account_type": acc.account_type,
                "cash": acc.cash,
                "holdings": [asdict(h) for h in acc.holdings.values()],
            }
            for acc in state.accounts.values()
        },
        "orders": [asdict(o) for o in state.orders],
        "executions": [asdict(e) for e in state.executions],
        "prices": state.prices,
    }


def read_state(data: dict) -> BookState:
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported simulator state version {data.get('version')!r}")
    accounts = {}
    for account_id, spec in data["accounts"].items():
        account = Account(
            account_id,
            spec["base_currency"],
            spec["account_type"],
            {k: float(v) for k, v in spec["cash"].items()},
        )
        for h in spec["holdings"]:
            account.holdings[int(h["con_id"])] = Holding(**h)
        accounts[account_id] = account
    orders = []
    for spec in data["orders"]:
        spec = dict(spec)
        spec["algo_params"] = [tuple(p) for p in spec.get("algo_params", [])]
        orders.append(SimOrder(**spec))
    return BookState(
        next_perm_id=int(data["next_perm_id"]),
        exec_seq=int(data["exec_seq"]),
        client_next_ids={int(k): int(v) for k, v in data["client_next_ids"].items()},
        accounts=accounts,
        orders=orders,
        executions=[SimExecution(**e) for e in data["executions"]],
        prices=data.get("prices", {}),
    )
