"""Account requests of the simulated gateway: managed accounts, positions, account updates
(single and multi), account summary, and the pushes that follow a fill.

Responsible for answering reqManagedAccts, reqPositions(+Multi), reqAccountUpdates(+Multi)
and reqAccountSummary from the book, remembering those subscriptions on the session, and
pushing position, portfolio and changed account values to subscribers after a fill (values
once per write, only those that changed). Must not change the book (see ARCHITECTURE.md at
the repository root).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reconciler.sim import messages as m
from reconciler.sim.market import Instrument
from reconciler.sim.protocol import to_bool, to_int

if TYPE_CHECKING:
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.session import Handler, Session

EASTERN = ZoneInfo("US/Eastern")
LEDGER_KEYS = (
    "CashBalance",
    "TotalCashBalance",
    "NetLiquidationByCurrency",
    "StockMarketValue",
    "ExchangeRate",
)


class AccountHandlers:
    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway
        self._dirty_accounts: set[str] = set()

    def routes(self) -> dict[int, Handler]:
        gateway = self.gateway
        return {
            m.IN_REQ_MANAGED_ACCTS: lambda s, f: s.send(
                m.managed_accounts(gateway.managed_accounts)
            ),
            m.IN_REQ_POSITIONS: self.req_positions,
            m.IN_CANCEL_POSITIONS: self.cancel_positions,
            m.IN_REQ_POSITIONS_MULTI: self.req_positions_multi,
            m.IN_CANCEL_POSITIONS_MULTI: lambda s, f: None,
            m.IN_REQ_ACCOUNT_UPDATES: self.req_account_updates,
            m.IN_REQ_ACCOUNT_UPDATES_MULTI: self.req_account_updates_multi,
            m.IN_CANCEL_ACCOUNT_UPDATES_MULTI: self.cancel_account_updates_multi,
            m.IN_REQ_ACCOUNT_SUMMARY: self.req_account_summary,
            m.IN_CANCEL_ACCOUNT_SUMMARY: lambda s, f: None,
        }

    # ----- positions --------------------------------------------------------------------
    def req_positions(self, session: Session, fields: list[str]) -> None:
        session.positions_sub = True
        book = self.gateway.book
        for account in self.gateway.managed_accounts:
            if self.gateway.faults.positions_hidden(account):
                continue
            for inst, qty, avg_cost in book.positions(account):
                session.send(m.position(account, inst, qty, avg_cost))
        if not self.gateway.faults.withhold_position_end:
            session.send(m.position_end())

    def cancel_positions(self, session: Session, fields: list[str]) -> None:
        session.positions_sub = False

    def req_positions_multi(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        account = fields[3] if len(fields) > 3 else ""
        model = fields[4] if len(fields) > 4 else ""
        for acc in self._accounts_for(account):
            if self.gateway.faults.positions_hidden(acc):
                continue
            for inst, qty, avg_cost in self.gateway.book.positions(acc):
                session.send(m.position_multi(req_id, acc, inst, qty, avg_cost, model))
        session.send(m.position_multi_end(req_id))

    def _accounts_for(self, account: str) -> list[str]:
        if account in ("", "All", "ALL"):
            return self.gateway.managed_accounts
        return [account] if account in self.gateway.book.accounts else []

    # ----- account updates ----------------------------------------------------------------
    def req_account_updates(self, session: Session, fields: list[str]) -> None:
        gateway = self.gateway
        subscribe = to_bool(fields[2]) if len(fields) > 2 else True
        account = fields[3] if len(fields) > 3 else ""
        if not subscribe:
            session.account_sub = None
            return
        if not account and len(gateway.managed_accounts) == 1:
            account = gateway.managed_accounts[0]
        if account not in gateway.book.accounts:
            session.error(
                -1,
                321,
                f"Error validating request:-'bB' : cause - account "
                f"{account!r} is not managed by this gateway",
            )
            return
        session.account_sub = account
        self._send_account_values(session, account, changed_only=False)
        for row in gateway.book.portfolio(account):
            session.send(m.portfolio_value(account, *row))
        session.send(m.account_time(self._account_time()))
        session.send(m.account_download_end(account))

    def _account_time(self) -> str:
        return self.gateway.clock.now().astimezone(EASTERN).strftime("%H:%M")

    def _send_account_values(
        self, session: Session, account: str, changed_only: bool, multi_req: int | None = None
    ) -> None:
        for key, value, currency in self.gateway.book.account_values(account):
            cache_key = (multi_req, account, key, currency)
            if changed_only and session.sent_values.get(cache_key) == value:
                continue
            session.sent_values[cache_key] = value
            if multi_req is None:
                session.send(m.account_value(key, value, currency, account))
            else:
                session.send(m.account_update_multi(multi_req, account, "", key, value, currency))

    def req_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        req_id = to_int(fields[2])
        account = fields[3] if len(fields) > 3 else ""
        accounts = self._accounts_for(account)
        session.multi_subs[req_id] = accounts
        for acc in accounts:
            self._send_account_values(session, acc, changed_only=False, multi_req=req_id)
        session.send(m.account_update_multi_end(req_id))

    def cancel_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        session.multi_subs.pop(to_int(fields[2]), None)

    # ----- account summary --------------------------------------------------------------
    def req_account_summary(self, session: Session, fields: list[str]) -> None:
        book = self.gateway.book
        req_id = to_int(fields[2])
        tags = [t.strip() for t in (fields[4] if len(fields) > 4 else "").split(",") if t]
        for account in self.gateway.managed_accounts:
            acc = book.accounts[account]
            summary = book.account_summary_values(account)
            for tag in tags:
                if tag in summary:
                    session.send(
                        m.account_summary(
                            req_id, account, tag, f"{summary[tag]:.2f}", acc.base_currency
                        )
                    )
                elif tag == "AccountType":
                    session.send(
                        m.account_summary(
                            req_id,
                            account,
                            tag,
                            "INDIVIDUAL" if acc.account_type == "cash" else "MARGIN",
                            "",
                        )
                    )
                elif tag.startswith("$LEDGER"):
                    wanted = tag.partition(":")[2] or acc.base_currency
                    for key, value, currency in book.account_values(account):
                        if key in LEDGER_KEYS and (wanted == "ALL" or currency in (wanted, "BASE")):
                            session.send(m.account_summary(req_id, account, key, value, currency))
        session.send(m.account_summary_end(req_id))

    # ----- pushes after fills -----------------------------------------------------------
    def push_changes(self, account: str, inst: Instrument) -> None:
        """Position and portfolio of one instrument to subscribers now; the account's values
        with the next write (``push_dirty_values``)."""
        book = self.gateway.book
        holding = book.accounts[account].holdings.get(inst.con_id)
        qty = holding.quantity if holding else 0.0
        avg_cost = holding.avg_cost if holding else 0.0
        for session in list(self.gateway.sessions):
            if not session.api_started:
                continue
            if session.positions_sub:
                session.send(m.position(account, inst, qty, avg_cost))
            if session.account_sub == account:
                price = book.mark(inst)
                session.send(
                    m.portfolio_value(
                        account,
                        inst,
                        qty,
                        price,
                        qty * price,
                        avg_cost,
                        qty * (price - avg_cost),
                        holding.realized_pnl if holding else 0.0,
                    )
                )
        self._dirty_accounts.add(account)

    def push_dirty_values(self) -> None:
        """Account values of accounts changed since the last write, to every subscriber:
        only the values that changed (clients keep the rest), once per write."""
        if not self._dirty_accounts:
            return
        dirty, self._dirty_accounts = self._dirty_accounts, set()
        for session in list(self.gateway.sessions):
            if not session.api_started:
                continue
            for account in dirty:
                if session.account_sub == account:
                    self._send_account_values(session, account, changed_only=True)
                    session.send(m.account_time(self._account_time()))
                for req_id, accounts in session.multi_subs.items():
                    if account in accounts:
                        self._send_account_values(
                            session, account, changed_only=True, multi_req=req_id
                        )
