"""Parsing of incoming client messages into plain values (contracts, orders, filters).

Responsible for reading the field lists the clients' ``client.py`` writes (placeOrder,
reqContractDetails, reqMktData, reqHistoricalData, reqExecutions) at the negotiated version.
Must not decide anything: the gateway and the book act on the values returned here (see
ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.sim.protocol import ProtocolError, to_bool, to_float, to_int

UNSET_DOUBLE_TEXT_LIMIT = 1.7e308


@dataclass(frozen=True)
class ContractSpec:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str = ""

    def describe(self) -> str:
        parts = [
            self.symbol or f"conId={self.con_id}",
            self.sec_type,
            self.exchange,
            self.primary_exchange,
            self.currency,
        ]
        return " ".join(p for p in parts if p)


def contract12(fields: list[str], at: int) -> ContractSpec:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
    primaryExchange, currency, localSymbol, tradingClass."""
    if len(fields) < at + 12:
        raise ProtocolError("contract fields missing")
    return ContractSpec(
        con_id=to_int(fields[at]),
        symbol=fields[at + 1],
        sec_type=fields[at + 2],
        exchange=fields[at + 7],
        primary_exchange=fields[at + 8],
        currency=fields[at + 9],
        local_symbol=fields[at + 10],
    )


@dataclass
class OrderRequest:
    order_id: int
    contract: ContractSpec
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    good_till_date: str = ""
    algo_strategy: str = ""
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    what_if: bool = False


class _Cursor:
    def __init__(self, fields: list[str], at: int) -> None:
        self.fields = fields
        self.at = at

    def take(self, n: int = 1) -> list[str]:
        chunk = self.fields[self.at : self.at + n]
        self.at += n
        while len(chunk) < n:
            chunk.append("")
        return chunk

    def one(self) -> str:
        return self.take(1)[0]


def parse_place_order(fields: list[str], version: int) -> OrderRequest:
    """Read placeOrder as the clients write it (no version field after the message id)."""
    if len(fields) < 35:
        raise ProtocolError("placeOrder is too short")
    contract = contract12(fields, 2)
    cursor = _Cursor(fields, 35)
    if contract.sec_type == "BAG":
        raise ProtocolError("combo (BAG) orders are not supported by the simulator")
    cursor.take(1)  # deprecated sharesAllocation
    # discretionaryAmt, goodAfterTime, goodTillDate (padded when the message ends early)
    good_till_date = cursor.take(3)[2]
    cursor.take(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        cursor.take(1)  # faProfile
    cursor.take(10)  # modelCode .. minQty (modelCode, shortSaleSlot, designatedLocation,
    # exemptCode, ocaType, rule80A, settlingFirm, allOrNone, minQty, percentOffset)
    cursor.take(3)  # eTradeOnly, firmQuoteOnly, nbboPriceCap
    cursor.take(6)  # auctionStrategy, startingPrice, stockRefPrice, delta, ranges
    cursor.take(3)  # overridePercentageConstraints, volatility, volatilityType
    dn_order_type = cursor.one()
    cursor.take(1)  # deltaNeutralAuxPrice
    if dn_order_type:
        cursor.take(8)
    cursor.take(6)  # continuousUpdate, referencePriceType, trailStop, trailPct, scale sizes
    increment = to_float(cursor.one())
    if increment is not None and 0 < increment < UNSET_DOUBLE_TEXT_LIMIT:
        cursor.take(7)
    cursor.take(3)  # scaleTable, activeStartTime, activeStopTime
    hedge_type = cursor.one()
    if hedge_type:
        cursor.take(1)
    cursor.take(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if to_bool(cursor.one()):
        cursor.take(3)  # delta neutral contract
    algo_strategy = cursor.one()
    algo_params: list[tuple[str, str]] = []
    if algo_strategy:
        count = to_int(cursor.one())
        if not 0 <= count <= (len(fields) - cursor.at) // 2:
            # a count the message cannot hold would otherwise loop on padding for ever
            raise ProtocolError(f"placeOrder announces {count} algo parameters")
        for _ in range(count):
            tag, value = cursor.take(2)
            algo_params.append((tag, value))
    cursor.take(1)  # algoId
    what_if = to_bool(cursor.one())
    return OrderRequest(
        order_id=to_int(fields[1]),
        contract=contract,
        action=fields[16].upper(),
        total_quantity=to_float(fields[17], 0.0) or 0.0,
        order_type=fields[18].upper(),
        lmt_price=to_float(fields[19]),
        aux_price=to_float(fields[20]),
        tif=(fields[21] or "DAY").upper(),
        account=fields[23],
        order_ref=fields[26],
        transmit=to_bool(fields[27]) if fields[27] != "" else True,
        parent_id=to_int(fields[28]),
        outside_rth=to_bool(fields[33]),
        good_till_date=good_till_date,
        algo_strategy=algo_strategy,
        algo_params=algo_params,
        what_if=what_if,
    )


@dataclass(frozen=True)
class ExecFilter:
    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


def parse_exec_filter(fields: list[str]) -> tuple[int, ExecFilter]:
    padded = [*fields, *[""] * 10]
    return to_int(padded[2]), ExecFilter(
        client_id=to_int(padded[3]),
        account=padded[4],
        time=padded[5],
        symbol=padded[6],
        sec_type=padded[7],
        exchange=padded[8],
        side=padded[9],
    )


@dataclass(frozen=True)
class MarketDataRequest:
    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool


def parse_market_data(fields: list[str]) -> MarketDataRequest:
    contract = contract12(fields, 3)
    at = 15
    if contract.sec_type == "BAG":
        legs = to_int(fields[at])
        at += 1 + 4 * legs
    if to_bool(fields[at] if at < len(fields) else ""):
        at += 3
    at += 1
    rest = [*fields[at:], "", "", ""]
    return MarketDataRequest(
        req_id=to_int(fields[2]),
        contract=contract,
        generic_ticks=rest[0],
        snapshot=to_bool(rest[1]) or to_bool(rest[2]),
    )


@dataclass(frozen=True)
class HistoricalRequest:
    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical(fields: list[str]) -> HistoricalRequest:
    contract = contract12(fields, 2)
    rest = [*fields[14:], *[""] * 10]
    # includeExpired, end, barSize, duration, useRTH, whatToShow, formatDate, keepUpToDate
    return HistoricalRequest(
        req_id=to_int(fields[1]),
        contract=contract,
        end=rest[1],
        bar_size=rest[2],
        duration=rest[3],
        use_rth=to_bool(rest[4]),
        what_to_show=rest[5],
        format_date=to_int(rest[6], 1),
        keep_up_to_date=to_bool(rest[7]),
    )
