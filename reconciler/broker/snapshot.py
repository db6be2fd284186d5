"""One complete, consistent snapshot of the broker's state, or an error.

Responsible for gathering everything a cycle needs in one go: server time, positions (all
accounts), each account's values (cash by currency, NAV, FX rates, margin figures), open
orders of every client (with orderRef and remaining), today's executions with commissions,
completed orders, contract details for targets and every held position, and a quote for
each of those contracts (with its time and market-data type). Any timeout, lost connection,
1100 connectivity loss or missing account value raises `SnapshotError` naming what is
missing: missing data never means flat. A quote that arrives without prices is not an error
here (it is kept with None prices and the risk layer denies trading it). Must not plan,
decide or place orders.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.broker import contracts as contract_rules
from reconciler.broker import convert
from reconciler.broker.connection import (
    DELAYED_DATA_NOTICE,
    NO_MARKET_DATA_PERMISSION,
    GatewaySession,
)
from reconciler.broker.errors import BrokerError, ResolutionProblem, SnapshotError
from reconciler.model.actual import ActualState, ContractInfo, Quote
from reconciler.model.clock import Clock

LIVE, FROZEN, DELAYED, DELAYED_FROZEN = 1, 2, 3, 4


async def gather_checked(fetches: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Run fetches together; (results by name, problems). Non-broker errors propagate."""
    names = list(fetches)
    answers = await asyncio.gather(*fetches.values(), return_exceptions=True)
    results: dict[str, Any] = {}
    problems: list[str] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BrokerError):
            problems.append(str(answer))
        elif isinstance(answer, BaseException):
            raise answer
        else:
            results[name] = answer
    return results, problems


async def take_snapshot(
    session: GatewaySession,
    *,
    accounts: Sequence[str],
    targets: Iterable[ContractInfo],
    clock: Clock,
    naive_zone: str,
    gateway: str,
    managed: Sequence[str],
    market_data_type: int = LIVE,
    quote_timeout: float | None = None,
    quotes: bool = True,
) -> ActualState:
    ib = session.ib
    started = clock.now()
    mark = session.connectivity.mark()
    wanted = set(accounts)

    fetches: dict[str, Any] = {
        "server time": session.request("server time", ib.reqCurrentTimeAsync),
        "open orders": session.request("open orders (all clients)", ib.reqAllOpenOrdersAsync),
        "executions": session.request("today's executions", ib.reqExecutionsAsync),
        "completed orders": session.request(
            "completed orders", lambda: ib.reqCompletedOrdersAsync(False)
        ),
    }
    if session.positions_synced:
        # The start-up sync's complete positions, kept current by their subscription: asking
        # again right after connecting would be a duplicate request. Later snapshots ask.
        session.positions_synced = False
        synced = list(ib.positions())
    else:
        fetches["positions"] = session.request("positions", ib.reqPositionsAsync)
    for account in accounts:
        fetches[f"values:{account}"] = session.account_values(account)
    results, problems = await gather_checked(fetches)
    if "positions" not in fetches:
        results["positions"] = synced
    _stop_if(problems, session, mark)

    positions = [
        convert.position(p)
        for p in results["positions"]
        if p.account in wanted and float(p.position) != 0
    ]
    # --- steady state (issue 12 item 5): portfolio market prices on the positions --------
    if not quotes:
        positions = await _with_portfolio_prices(session, accounts, positions)
    # --- end steady state ----------------------------------------------------------------
    infos: dict[int, ContractInfo] = {info.con_id: info for info in targets}
    held_missing = sorted({p.con_id for p in positions} - set(infos))
    held_infos, problems = await _held_contracts(session, held_missing, positions)
    _stop_if(problems, session, mark)
    infos.update(held_infos)

    if quotes:
        found, missing_quotes = await snapshot_quotes(
            session, list(infos.values()), market_data_type, quote_timeout or session.timeout
        )
    else:
        found, missing_quotes = {}, []

    account_states = {}
    for account in accounts:
        try:
            account_states[account] = convert.account_state(
                account, results[f"values:{account}"], positions
            )
        except SnapshotError as error:
            problems.extend(error.problems)
    _stop_if(problems, session, mark)

    reports = {f.execution.execId: f.commissionReport for f in ib.fills()}
    executions = tuple(
        sorted(
            (
                convert.execution(f, reports.get(f.execution.execId), naive_zone)
                for f in results["executions"]
                if f.execution.acctNumber in wanted
            ),
            key=lambda e: (e.time, e.exec_id),
        )
    )
    open_orders = tuple(
        convert.open_order(t)
        for t in results["open orders"]
        if t.order.account in wanted and t.orderStatus.status not in convert.FINAL_STATUSES
    )
    completed = tuple(
        convert.completed_order(t) for t in results["completed orders"] if t.order.account in wanted
    )
    server_time = convert.to_utc(results["server time"])
    extra = {}
    if missing_quotes:
        extra["quotes_missing"] = ",".join(sorted(missing_quotes))
    return ActualState(
        snapshot_time=started,
        server_time=server_time,
        managed_accounts=tuple(managed),
        accounts=account_states,
        quotes=found,
        contracts=dict(sorted(infos.items())),
        open_orders=tuple(sorted(open_orders, key=lambda o: (o.account, o.perm_id, o.order_id))),
        executions=executions,
        completed_orders=completed,
        gateway=gateway,
        extra=extra,
    )


async def _with_portfolio_prices(
    session: GatewaySession, accounts: Sequence[str], positions: list[Any]
) -> list[Any]:
    """The positions with the market price of their account's portfolio update.

    The client keeps the portfolio of the account it subscribed to (ib_async subscribes a
    single-account gateway's account at connect and keeps it current); an account whose
    portfolio it does not hold is asked for once (one request, one subscription at a time).
    A position without a usable price keeps None: it will get a live quote.
    """
    ib = session.ib
    prices: dict[tuple[str, int], float] = {}
    for account in accounts:
        held = {p.con_id for p in positions if p.account == account}
        items = ib.portfolio(account)
        if held - {int(i.contract.conId) for i in items}:
            await session.request(
                f"portfolio of {account}", lambda a=account: ib.reqAccountUpdatesAsync(a)
            )
            items = ib.portfolio(account)
        for item in items:
            price = convert.price(item.marketPrice)
            if price is not None:
                prices[(account, int(item.contract.conId))] = price
    return [
        dataclasses.replace(p, market_price=prices.get((p.account, p.con_id))) for p in positions
    ]


def _stop_if(problems: list[str], session: GatewaySession, mark: tuple[int, int]) -> None:
    lost = session.connectivity.problems_since(mark)
    if problems or lost:
        raise SnapshotError([*lost, *problems])


async def _held_contracts(
    session: GatewaySession, con_ids: Sequence[int], positions: Sequence[Any]
) -> tuple[dict[int, ContractInfo], list[str]]:
    """Contract details for held positions that are not targets (by conId)."""
    symbols = {p.con_id: p.symbol for p in positions}

    async def one(con_id: int) -> ContractInfo | ResolutionProblem:
        key = f"{symbols.get(con_id, '?')} (conId {con_id}, held)"
        answer: ContractInfo | ResolutionProblem | None = None
        for exchange in ("SMART", ""):
            request = contract_rules.request_for_con_id(session.lib, con_id, exchange)
            details, errors = await session.contract_details(request, f"contract {key}")
            answer = contract_rules.judge(key, exchange, details, errors, by_con_id=True)
            if isinstance(answer, ContractInfo):
                return answer
        assert answer is not None
        return answer

    results, problems = await gather_checked({str(c): one(c) for c in con_ids})
    infos: dict[int, ContractInfo] = {}
    for answer in results.values():
        if isinstance(answer, ContractInfo):
            infos[answer.con_id] = answer
        else:
            problems.append(f"contract details for {answer.render()}")
    return infos, problems


async def snapshot_quotes(
    session: GatewaySession, infos: Sequence[ContractInfo], market_data_type: int, timeout: float
) -> tuple[dict[int, Quote], list[str]]:
    """A quote per contract; live first, delayed for those without a live subscription."""
    if not infos:
        return {}, []

    async def one(info: ContractInfo, kind: int) -> tuple[ContractInfo, Quote, set[int]]:
        contract = session.contract_for(
            info.con_id, lambda: contract_rules.ib_contract(session.lib, info)
        )
        ticker, errors, _ended = await session.market_snapshot(contract, timeout)
        codes = {code for code, _ in errors}
        mdt = int(getattr(ticker, "marketDataType", kind) or kind)
        if (DELAYED_DATA_NOTICE in codes or kind >= DELAYED) and mdt in (LIVE, FROZEN):
            mdt += 2
        return info, convert.quote(ticker, info.con_id, info.symbol, mdt), codes

    session.set_market_data_type(market_data_type)
    results, problems = await gather_checked(
        {str(i.con_id): one(i, market_data_type) for i in infos}
    )
    if problems:
        raise SnapshotError(problems)
    quotes: dict[int, Quote] = {}
    retry: list[ContractInfo] = []
    for info, quote, codes in results.values():
        quotes[info.con_id] = quote
        if NO_MARKET_DATA_PERMISSION in codes and market_data_type in (LIVE, FROZEN):
            retry.append(info)
    if retry:
        delayed = market_data_type + 2
        session.set_market_data_type(delayed)
        try:
            again, problems = await gather_checked({str(i.con_id): one(i, delayed) for i in retry})
        finally:
            if session.connected:
                session.set_market_data_type(market_data_type)
        if problems:
            raise SnapshotError(problems)
        for info, quote, _codes in again.values():
            if quote.reference_price is not None or quotes[info.con_id].reference_price is None:
                quotes[info.con_id] = quote
    missing = [q.symbol for q in quotes.values() if q.reference_price is None]
    return dict(sorted(quotes.items())), missing
