"""Encoders for every message the simulated gateway sends, per negotiated server version.

Responsible for producing the exact field lists the clients' ``decoder.py`` reads (ib_insync
0.9.86 negotiates 176, ib_async 2.1.0 negotiates 178; layouts differ in a few places, and the
installed clients' decoders are the authority). Each function returns a list of strings;
framing is ``protocol``'s job. Must not decide anything about orders or accounts: callers
pass values in. Objects passed in are duck-typed (``market.Instrument``,
``book.SimOrder``, ``book.SimExecution``) so this module stays import-free (see
ARCHITECTURE.md at the repository root).
"""

# fmt: off
# The field lists are laid out in the groups the decoders read them in, with the names of
# each group in a trailing comment; the formatter would put every field on its own line.

from __future__ import annotations

from collections.abc import Iterable

from reconciler.sim.protocol import fmt, fmt_price

# incoming message ids (client -> gateway)
IN_REQ_MKT_DATA = 1
IN_CANCEL_MKT_DATA = 2
IN_PLACE_ORDER = 3
IN_CANCEL_ORDER = 4
IN_REQ_OPEN_ORDERS = 5
IN_REQ_ACCOUNT_UPDATES = 6
IN_REQ_EXECUTIONS = 7
IN_REQ_IDS = 8
IN_REQ_CONTRACT_DETAILS = 9
IN_REQ_AUTO_OPEN_ORDERS = 15
IN_REQ_ALL_OPEN_ORDERS = 16
IN_REQ_MANAGED_ACCTS = 17
IN_REQ_HISTORICAL_DATA = 20
IN_CANCEL_HISTORICAL_DATA = 25
IN_REQ_CURRENT_TIME = 49
IN_REQ_GLOBAL_CANCEL = 58
IN_REQ_MARKET_DATA_TYPE = 59
IN_REQ_POSITIONS = 61
IN_REQ_ACCOUNT_SUMMARY = 62
IN_CANCEL_ACCOUNT_SUMMARY = 63
IN_CANCEL_POSITIONS = 64
IN_START_API = 71
IN_REQ_POSITIONS_MULTI = 74
IN_CANCEL_POSITIONS_MULTI = 75
IN_REQ_ACCOUNT_UPDATES_MULTI = 76
IN_CANCEL_ACCOUNT_UPDATES_MULTI = 77
IN_REQ_COMPLETED_ORDERS = 99

# tick types
TICK_BID_SIZE, TICK_BID, TICK_ASK, TICK_ASK_SIZE, TICK_LAST, TICK_LAST_SIZE = 0, 1, 2, 3, 4, 5
TICK_HIGH, TICK_LOW, TICK_VOLUME, TICK_CLOSE, TICK_OPEN = 6, 7, 8, 9, 14
DELAYED_OFFSET = {1: 66, 2: 67, 4: 68, 6: 72, 7: 73, 8: 74, 9: 75, 14: 76, 0: 69, 3: 70, 5: 71}

UNSET_INT = 2147483647


def error(version: int, req_id: int, code: int, message: str) -> list[str]:
    fields = ["4", "2", str(req_id), str(code), message]
    if version >= 166:
        fields.append("")  # advancedOrderRejectJson: without it the client drops the error
    return fields


def managed_accounts(accounts: Iterable[str]) -> list[str]:
    return ["15", "1", ",".join(accounts)]


def next_valid_id(order_id: int) -> list[str]:
    return ["9", "1", str(order_id)]


def current_time(epoch_seconds: int) -> list[str]:
    return ["49", "1", str(epoch_seconds)]


def _contract11(inst, exchange: str) -> list[str]:
    """conId..tradingClass without primaryExchange (positions, fills, orders)."""
    return [
        str(inst.con_id), inst.symbol, inst.sec_type, "", "0", "", "",
        exchange, inst.currency, inst.local_symbol, inst.trading_class,
    ]


def position(account: str, inst, quantity: float, avg_cost: float) -> list[str]:
    return ["61", "3", account, *_contract11(inst, inst.primary_exchange),
            fmt(quantity), fmt_price(avg_cost)]


def position_end() -> list[str]:
    return ["62", "1"]


def position_multi(req_id: int, account: str, inst, quantity: float, avg_cost: float,
                   model_code: str = "") -> list[str]:
    return ["71", "1", str(req_id), account, *_contract11(inst, inst.primary_exchange),
            fmt(quantity), fmt_price(avg_cost), model_code]


def position_multi_end(req_id: int) -> list[str]:
    return ["72", "1", str(req_id)]


def account_value(key: str, value: str, currency: str, account: str) -> list[str]:
    return ["6", "2", key, value, currency, account]


def portfolio_value(account: str, inst, quantity: float, market_price: float,
                    market_value: float, avg_cost: float, unrealized: float,
                    realized: float) -> list[str]:
    # primaryExchange sits where exchange would: that is how the decoder reads it.
    return [
        "7", "8", str(inst.con_id), inst.symbol, inst.sec_type, "", "0", "", "",
        inst.primary_exchange, inst.currency, inst.local_symbol, inst.trading_class,
        fmt(quantity), fmt_price(market_price), fmt_price(market_value), fmt_price(avg_cost),
        fmt_price(unrealized), fmt_price(realized), account,
    ]


def account_time(hh_mm: str) -> list[str]:
    return ["8", "1", hh_mm]


def account_download_end(account: str) -> list[str]:
    return ["54", "1", account]


def account_update_multi(req_id: int, account: str, model_code: str, key: str, value: str,
                         currency: str) -> list[str]:
    return ["73", "1", str(req_id), account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> list[str]:
    return ["74", "1", str(req_id)]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[str]:
    return ["63", "1", str(req_id), account, tag, value, currency]


def account_summary_end(req_id: int) -> list[str]:
    return ["64", "1", str(req_id)]


def contract_details(version: int, req_id: int, inst, trading_hours: str,
                     liquid_hours: str) -> list[str]:
    fields = ["10"]
    if version < 164:
        fields.append("8")
    fields += [
        str(req_id), inst.symbol, inst.sec_type, "", "0", "", inst.exchange, inst.currency,
        inst.local_symbol, inst.trading_class, inst.trading_class, str(inst.con_id),
        fmt_price(inst.min_tick),
    ]
    if version < 164:
        fields.append("1")  # mdSizeMultiplier, obsolete
    sec_ids = [("ISIN", inst.isin)] if inst.isin else []
    fields += [
        "",  # multiplier
        inst.order_types, inst.valid_exchanges, "1", "0", inst.long_name,
        inst.primary_exchange, "", inst.industry, inst.category, inst.subcategory,
        inst.time_zone_id, trading_hours, liquid_hours, "", "",
        str(len(sec_ids)),
    ]
    for tag, value in sec_ids:
        fields += [tag, value]
    fields += ["1", "", "", inst.market_rule_ids, "", inst.stock_type]
    if version == 163:
        fields.append(fmt(inst.size_increment))
    if version >= 164:
        fields += [fmt(inst.min_size), fmt(inst.size_increment), fmt(inst.size_increment)]
    return fields


def contract_details_end(req_id: int) -> list[str]:
    return ["52", "1", str(req_id)]


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0,
               attr_mask: int = 0) -> list[str]:
    return ["1", "6", str(req_id), str(tick_type), fmt_price(price), fmt(size), str(attr_mask)]


def tick_size(req_id: int, tick_type: int, size: float) -> list[str]:
    return ["2", "6", str(req_id), str(tick_type), fmt(size)]


def market_data_type(req_id: int, md_type: int) -> list[str]:
    return ["58", "1", str(req_id), str(md_type)]


def tick_snapshot_end(req_id: int) -> list[str]:
    return ["57", "1", str(req_id)]


def historical_data(req_id: int, start: str, end: str, bars: list[tuple]) -> list[str]:
    """bars: (date, open, high, low, close, volume, wap, count)."""
    fields = ["17", str(req_id), start, end, str(len(bars))]
    for date, o, h, lo, c, volume, wap, count in bars:
        fields += [date, fmt_price(o), fmt_price(h), fmt_price(lo), fmt_price(c),
                   fmt(volume), fmt_price(wap), str(count)]
    return fields


def open_order_end() -> list[str]:
    return ["53", "1"]


def order_status(order) -> list[str]:
    return [
        "3", str(order.order_id), order.status, fmt(order.filled), fmt(order.remaining),
        fmt_price(order.avg_fill_price), str(order.perm_id), "0",
        fmt_price(order.last_fill_price), str(order.client_id), "", "",
    ]


def _order_prices(order) -> tuple[str, str]:
    lmt = fmt_price(order.lmt_price) if order.lmt_price is not None else ""
    aux = fmt_price(order.aux_price) if order.aux_price is not None else ""
    return lmt, aux


def open_order(version: int, order, inst) -> list[str]:
    """Field for field what ``Decoder.openOrder`` reads (128 fields at 176, 127 at 178)."""
    lmt, aux = _order_prices(order)
    fields = [
        "5", str(order.order_id), *_contract11(inst, order.exchange),
        order.action, fmt(order.total_quantity), order.order_type, lmt, aux, order.tif,
        "", order.account, "O", "0", order.order_ref, str(order.client_id),
        str(order.perm_id), "1" if order.outside_rth else "0", "0", "0", "", "",
        "", "", "",  # faGroup, faMethod, faPercentage
    ]
    if version < 177:
        fields.append("")  # faProfile
    fields += [
        "", order.good_till_date, "", "", "", "0", "", "-1",  # modelCode..exemptCode
        "0", "", "", "", "", "",  # auctionStrategy..stockRangeUpper
        "", "0", "0", "0", "", "0",  # displaySize..ocaType
        "0", "0", "", "0", "0",  # eTradeOnly, firmQuoteOnly, nbboPriceCap, parentId, trigger
        "", "0", "", "",  # volatility, volatilityType, deltaNeutralOrderType(empty), dnAux
        "0", "0", "", "", "", "0", "",  # continuousUpdate..basisPointsType, comboLegsDescrip
        "0", "0", "0",  # numLegs, numOrderLegs, numSmartComboParams
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        "0", "", "", "0", "0",  # optOutSmartRouting, clearingAcct, clearingIntent, notHeld, dnc
    ]
    if order.algo_strategy:
        fields += [order.algo_strategy, str(len(order.algo_params))]
        for tag, value in order.algo_params:
            fields += [tag, value]
    else:
        fields.append("")
    fields += [
        "0", "0", order.status,  # solicited, whatIf, status
        "", "", "", "", "", "", "", "", "",  # margin before/change/after
        "", "", "", "", "",  # commission, min, max, currency, warningText
        "0", "0",  # randomizeSize, randomizePrice
        "0",  # numConditions
        "", "", "", "", "", "", "", "0",  # adjustedOrderType..adjustableTrailingUnit
        "", "", "",  # softDollarTier name/val/displayName
        "", "0", "0", "", "0",  # cashQty..usePriceMgmtAlgo
    ]
    if version >= 159:
        fields.append("")  # duration
    if version >= 160:
        fields.append("")  # postToAts
    if version >= 162:
        fields.append("0")  # autoCancelParent
    if version >= 170:
        fields += ["", "", "", "", ""]
    return fields


def completed_order(version: int, order, inst) -> list[str]:
    """Field for field what ``Decoder.completedOrder`` reads."""
    lmt, aux = _order_prices(order)
    fields = [
        "101", *_contract11(inst, order.exchange),
        order.action, fmt(order.total_quantity), order.order_type, lmt, aux, order.tif,
        "", order.account, "O", "0", order.order_ref, str(order.perm_id),
        "1" if order.outside_rth else "0", "0", "0", "", "", "", "",
    ]
    if version < 177:
        fields.append("")  # faProfile
    fields += [
        "", order.good_till_date, "", "", "", "0", "", "-1",  # modelCode..exemptCode
        "", "", "", "", "",  # startingPrice..stockRangeUpper
        "", "0", "0", "", "0", "0",  # displaySize, sweepToFill, allOrNone, minQty, ocaType, trig
        "", "0", "", "",  # volatility, volatilityType, deltaNeutralOrderType, dnAux
        "0", "0", "", "", "",  # continuousUpdate, refPriceType, trailStop, trailPct, comboDesc
        "0", "0", "0",  # numLegs, numOrderLegs, numSmartComboParams
        "", "", "",  # scale sizes and increment
        "",  # hedgeType
        "", "", "0", "0",  # clearingAccount, clearingIntent, notHeld, dncPresent
    ]
    if order.algo_strategy:
        fields += [order.algo_strategy, str(len(order.algo_params))]
        for tag, value in order.algo_params:
            fields += [tag, value]
    else:
        fields.append("")
    fields += [
        "0", order.status, "0", "0",  # solicited, status, randomizeSize, randomizePrice
        "0",  # numConditions
        "", "", "", "0", "0",  # trailStopPrice, lmtPriceOffset, cashQty, dontUseAuto, isOms
        "", fmt(order.filled), "0", "0", "", "0", "0", "0",  # autoCancelDate..parentPermId
        order.completed_time, order.completed_status,
    ]
    if version >= 170:
        fields += ["", "", "", "", ""]
    return fields


def completed_orders_end() -> list[str]:
    return ["102"]


def exec_details(version: int, req_id: int, execution, inst) -> list[str]:
    fields = [
        "11", str(req_id), str(execution.order_id),
        *_contract11(inst, inst.primary_exchange),
        execution.exec_id, execution.time_text, execution.account, execution.exchange,
        execution.side, fmt(execution.shares), fmt_price(execution.price),
        str(execution.perm_id), str(execution.client_id), "0", fmt(execution.cum_qty),
        fmt_price(execution.avg_price), execution.order_ref, "", "", "", "1",
    ]
    if version >= 178:
        fields.append("0")  # pendingPriceRevision
    return fields


def exec_details_end(req_id: int) -> list[str]:
    return ["55", "1", str(req_id)]


def commission_report(execution) -> list[str]:
    realized = "" if execution.realized_pnl is None else fmt_price(execution.realized_pnl)
    return ["59", "1", execution.exec_id, fmt_price(execution.commission),
            execution.commission_currency, realized, "", ""]
