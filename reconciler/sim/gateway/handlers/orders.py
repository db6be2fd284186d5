"""Order requests of the simulated gateway and the order life cycle that follows them:
placing, modifying, cancelling, acknowledging after latency, filling, expiring, replaying.

Responsible for placeOrder (book acceptance, ack and fill latency, the dropAfterOrders,
withholdAcks and duplicateIdOnOrder faults), cancelOrder and reqGlobalCancel (202, 10147,
10148; the lateFillOnCancel, fillAfterCancel and unknownOnCancel faults), reqOpenOrders,
reqAllOpenOrders, reqCompletedOrders, reqExecutions and reqIds; for pushing openOrder,
orderStatus, execDetails and commissionReport to the order's own client; for working the
book on each market tick (market open, DAY expiry, fills) and for resuming working orders
restored from a state file. Must not compute fills or funds itself (the book does) nor
write the state file (the gateway does) (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from reconciler.sim import messages as m
from reconciler.sim.book import BookError, Fill, SimOrder
from reconciler.sim.protocol import to_int
from reconciler.sim.requests import parse_exec_filter, parse_place_order

if TYPE_CHECKING:
    from reconciler.sim.gateway.handlers.accounts import AccountHandlers
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.session import Handler, Session

log = logging.getLogger("reconciler.sim")


class OrderHandlers:
    def __init__(self, gateway: SimGateway, accounts: AccountHandlers) -> None:
        self.gateway = gateway
        self.accounts = accounts
        self._silent: set[int] = set()  # withholdAcks: orders whose events are never pushed

    def routes(self) -> dict[int, Handler]:
        return {
            m.IN_REQ_IDS: self.req_ids,
            m.IN_PLACE_ORDER: self.place_order,
            m.IN_CANCEL_ORDER: self.cancel_order,
            m.IN_REQ_GLOBAL_CANCEL: self.global_cancel,
            m.IN_REQ_OPEN_ORDERS: self.req_open_orders,
            m.IN_REQ_ALL_OPEN_ORDERS: self.req_all_open_orders,
            m.IN_REQ_AUTO_OPEN_ORDERS: lambda s, f: None,
            m.IN_REQ_COMPLETED_ORDERS: self.req_completed_orders,
            m.IN_REQ_EXECUTIONS: self.req_executions,
        }

    def req_ids(self, session: Session, fields: list[str]) -> None:
        session.send(m.next_valid_id(self.gateway.book.next_order_id(session.client_id)))

    def _owner(self, order: SimOrder) -> Session | None:
        """The connected session of the client that placed the order, unless withheld."""
        if order.perm_id in self._silent:
            return None
        for session in self.gateway.sessions:
            if session.client_id == order.client_id and session.api_started:
                return session
        return None

    # ----- placing and acknowledging ----------------------------------------------------
    def place_order(self, session: Session, fields: list[str]) -> None:
        gateway, faults = self.gateway, self.gateway.faults
        request = parse_place_order(fields, session.version)
        if request.what_if:
            session.error(
                request.order_id,
                201,
                "Order rejected - reason:what-if orders are not supported by the simulator",
            )
            return
        faults.orders_seen += 1
        if faults.duplicate_id_on_order == faults.orders_seen:
            session.error(request.order_id, 103, f"Duplicate order id {request.order_id}")
            return
        drop = (
            faults.drop_after_orders is not None and faults.orders_seen == faults.drop_after_orders
        )
        try:
            order, modified = gateway.book.place(
                session.client_id,
                request,
                gateway.clock.now(),
                gateway.managed_accounts,
                frozenset(faults.rejected_symbols),
            )
        except BookError as exc:
            session.error(request.order_id, exc.code, exc.message)
            return
        if faults.withhold_acks and not modified:
            self._silent.add(order.perm_id)
        if drop:
            log.info(
                "fault: dropping client %s after order %s", session.client_id, faults.orders_seen
            )
            self._acknowledge(order)  # the order lives; the client never hears of it
            gateway.persist()
            session.abort()
            return
        if modified:
            self._send_order_state(order)
            self.fill_once(order)
            return
        if gateway.ack_delay > 0:
            gateway.later(gateway.ack_delay, self._acknowledge_later, order)
        else:
            self._acknowledge(order)

    def _acknowledge_later(self, order: SimOrder) -> None:
        self._acknowledge(order)
        self.gateway.after_change()

    def _acknowledge(self, order: SimOrder) -> None:
        if not order.is_working or order.acknowledged:
            return
        book = self.gateway.book
        book.acknowledge(order, book.is_open_for(order, self.gateway.clock.now()))
        self._send_order_state(order)
        self._schedule_eligible(order)

    def _schedule_eligible(self, order: SimOrder) -> None:
        remaining_delay = self.gateway.fill_delay - self.gateway.ack_delay
        if remaining_delay > 0:
            self.gateway.later(remaining_delay, self._make_eligible, order)
        else:
            self._make_eligible(order, persist=False)

    def resume_restored(self) -> None:
        """Working orders loaded from the state file keep working after a restart.

        The exchange holds them while the gateway is down: one whose acknowledgement was
        pending is acknowledged now (its client learns of it from reqOpenOrders on
        reconnect), one still inside its fill latency gets that latency again from now.
        """
        for order in self.gateway.book.working_orders():
            if not order.acknowledged:
                self._acknowledge(order)
            elif not order.eligible:
                self._schedule_eligible(order)

    def _make_eligible(self, order: SimOrder, persist: bool = True) -> None:
        if not order.is_working:
            return
        self.gateway.book.make_eligible(order)
        self.fill_once(order)
        if order.is_working and order.tif == "IOC":
            self._cancel_with_notice(order, "Cancelled: IOC remainder")
        if persist:
            self.gateway.after_change()

    def _send_order_state(self, order: SimOrder, to: Session | None = None) -> None:
        if to is None:
            to = self._owner(order)
        if to is None:
            return
        to.send(m.open_order(to.version, order, self.gateway.universe.get(order.con_id)))
        to.send(m.order_status(order))
        if self.gateway.faults.duplicate_order_status:
            to.send(m.order_status(order))

    # ----- fills ------------------------------------------------------------------------
    def fill_once(self, order: SimOrder) -> Fill | None:
        if not order.eligible:
            return None
        fill = self.gateway.book.try_fill(order, self.gateway.clock.now())
        if fill is not None:
            self._emit_fill(fill)
        return fill

    def fill_marketable(self, con_id: int) -> None:
        """After a price change: fill what became marketable in this instrument."""
        for order in self.gateway.book.working_orders():
            if order.con_id == con_id and order.eligible:
                self.fill_once(order)

    def _emit_fill(self, fill: Fill) -> None:
        order, execution = fill.order, fill.execution
        inst = self.gateway.universe.get(order.con_id)
        owner = self._owner(order)
        if owner is not None:
            copies = 2 if self.gateway.faults.duplicate_exec_details else 1
            for _ in range(copies):
                owner.send(m.exec_details(owner.version, -1, execution, inst))
                owner.send(m.commission_report(execution))
        self.accounts.push_changes(order.account, inst)
        if owner is not None:
            self._send_order_state(order, to=owner)

    def work_orders(self, now: dt.datetime) -> None:
        """One market tick: expire DAY orders, submit at the open, fill what is marketable."""
        book = self.gateway.book
        for order in book.expire_day_orders(now):
            owner = self._owner(order)
            if owner is not None:
                owner.send(m.order_status(order))
                owner.error(order.order_id, 202, "Order Canceled - reason:DAY order expired")
        for order in book.working_orders():
            if not order.acknowledged:
                continue
            if order.status == "PreSubmitted" and book.is_open_for(order, now):
                book.mark_submitted(order, True)
                self._send_order_state(order)
            self.fill_once(order)

    # ----- cancels ----------------------------------------------------------------------
    def _cancel_with_notice(self, order: SimOrder, text: str) -> None:
        self.gateway.book.finish(order, "Cancelled", self.gateway.clock.now(), text)
        owner = self._owner(order)
        if owner is not None:
            owner.send(m.order_status(order))
            owner.error(order.order_id, 202, "Order Canceled - reason:")

    def cancel_order(self, session: Session, fields: list[str]) -> None:
        order_id = to_int(fields[2])
        faults = self.gateway.faults
        if faults.unknown_on_cancel:
            session.error(
                order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
            return
        order = self.gateway.book.find(session.client_id, order_id)
        if faults.late_fill_on_cancel and order is not None and order.is_working:
            self._pending_cancel(session, order)
            return
        fill_after = faults.fill_after_cancel and order is not None and order.is_working
        try:
            order = self.gateway.book.cancel(session.client_id, order_id, self.gateway.clock.now())
        except BookError as exc:
            session.error(order_id, exc.code, exc.message)
            return
        session.send(m.order_status(order))
        session.error(order_id, 202, "Order Canceled - reason:")
        if fill_after:
            self.gateway.later(0.2, self._fill_after_cancel, order)

    def _fill_after_cancel(self, order: SimOrder) -> None:
        fill = self.gateway.book.late_fill(order, self.gateway.clock.now())
        if fill is not None:
            self._emit_fill(fill)
        self.gateway.after_change()

    def _pending_cancel(self, session: Session, order: SimOrder) -> None:
        """lateFillOnCancel: PendingCancel now; a moment later one more fill, then Cancelled."""
        working_status = order.status
        order.status = "PendingCancel"
        session.send(m.order_status(order))
        order.status = working_status

        def late_fill_then_cancel() -> None:
            if order.is_working:
                order.eligible = True
                self.fill_once(order)  # ignores the fill latency: the fill was on its way
            if order.is_working:
                self._cancel_with_notice(order, "Cancelled by Trader")
            self.gateway.after_change()

        self.gateway.later(0.2, late_fill_then_cancel)

    def global_cancel(self, session: Session, fields: list[str]) -> None:
        for order in self.gateway.book.working_orders():
            self._cancel_with_notice(order, "Cancelled: global cancel")

    # ----- replays ----------------------------------------------------------------------
    def req_open_orders(self, session: Session, fields: list[str]) -> None:
        for order in self.gateway.book.working_orders():
            if order.client_id == session.client_id:
                self._send_order_state(order, to=session)
        session.send(m.open_order_end())

    def req_all_open_orders(self, session: Session, fields: list[str]) -> None:
        for order in self.gateway.book.working_orders():
            self._send_order_state(order, to=session)
        session.send(m.open_order_end())

    def req_completed_orders(self, session: Session, fields: list[str]) -> None:
        managed = set(self.gateway.managed_accounts)
        universe = self.gateway.universe
        for order in self.gateway.book.orders.values():
            if not order.is_working and order.account in managed:
                session.send(m.completed_order(session.version, order, universe.get(order.con_id)))
        session.send(m.completed_orders_end())

    def req_executions(self, session: Session, fields: list[str]) -> None:
        req_id, flt = parse_exec_filter(fields)
        book, universe = self.gateway.book, self.gateway.universe
        for execution in book.executions_for(session.client_id, flt, self.gateway.clock.now()):
            inst = universe.get(execution.con_id)
            session.send(m.exec_details(session.version, req_id, execution, inst))
            session.send(m.commission_report(execution))
        session.send(m.exec_details_end(req_id))
