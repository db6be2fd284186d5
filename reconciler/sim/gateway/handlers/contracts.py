"""Contract requests of the simulated gateway: reqContractDetails, and the contract lookup
the market-data handlers share.

Responsible for resolving a request contract against the universe as IB does (conId, or
symbol with secType, exchange, primaryExchange and currency; ambiguous requests return every
listing) and for contract details with ``timeZoneId``, ``tradingHours`` and ``liquidHours``
from the market's sessions; error 200 when nothing matches. Must not change the book or the
market (see ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.sim import messages as m
from reconciler.sim.book.orders import AMBIGUOUS, NO_SECURITY
from reconciler.sim.market import Instrument, Universe
from reconciler.sim.protocol import to_int
from reconciler.sim.requests import ContractSpec, contract12

if TYPE_CHECKING:
    from reconciler.sim.gateway.server import SimGateway
    from reconciler.sim.gateway.session import Handler, Session

__all__ = ["AMBIGUOUS", "NO_SECURITY", "ContractHandlers", "resolve"]


def resolve(universe: Universe, spec: ContractSpec) -> list[Instrument]:
    return universe.resolve(
        spec.con_id, spec.symbol, spec.sec_type, spec.exchange, spec.primary_exchange, spec.currency
    )


class ContractHandlers:
    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway

    def routes(self) -> dict[int, Handler]:
        return {m.IN_REQ_CONTRACT_DETAILS: self.req_contract_details}

    def req_contract_details(self, session: Session, fields: list[str]) -> None:
        gateway = self.gateway
        req_id = to_int(fields[2])
        matches = resolve(gateway.universe, contract12(fields, 3))
        if not matches:
            session.error(req_id, 200, NO_SECURITY)
            return
        now = gateway.clock.now()
        for inst in matches:
            trading = gateway.hours.hours_text(inst, now, extended=True)
            liquid = gateway.hours.hours_text(inst, now, extended=False)
            session.send(m.contract_details(session.version, req_id, inst, trading, liquid))
        session.send(m.contract_details_end(req_id))
