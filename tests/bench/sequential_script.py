"""The benchmark's comparison: a plain ib_async script that trades one instrument at a time.

For each (symbol, quantity) of a targets file it qualifies the contract, takes a snapshot
quote, sends a market order and waits until it is filled, then goes on to the next; the
client library's own throttle (45 messages per second) paces it. `--check` sends nothing: it
connects, reads the positions and compares them with the targets (how run_all.py checks
both end states from the client side). Prints one JSON line; exit 0 when the positions equal
the targets, 1 otherwise.

Usage: python tests/bench/sequential_script.py HOST PORT TARGETS.json [--client-id N]
       [--account ID] [--check]
TARGETS.json: {"SYMBOL": quantity, ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import ib_async


async def trade_all(ib: ib_async.IB, targets: dict[str, float], account: str) -> None:
    for symbol, quantity in targets.items():
        [contract] = await ib.qualifyContractsAsync(ib_async.Stock(symbol, "SMART", "USD"))
        [ticker] = await ib.reqTickersAsync(contract)
        if not (ticker.ask == ticker.ask or ticker.last == ticker.last):  # NaN: no price
            raise SystemExit(f"{symbol}: no quote")
        trade = ib.placeOrder(contract, ib_async.MarketOrder("BUY", quantity, account=account))
        while not trade.isDone():
            await trade.statusEvent
        if trade.orderStatus.status != "Filled":
            raise SystemExit(f"{symbol}: {trade.orderStatus.status}")


async def held(ib: ib_async.IB, account: str) -> dict[str, float]:
    positions = await ib.reqPositionsAsync()
    return {
        p.contract.symbol: float(p.position)
        for p in positions
        if p.account == account and float(p.position) != 0
    }


async def main(args: argparse.Namespace) -> int:
    with open(args.targets, encoding="utf-8") as handle:
        targets = {k: float(v) for k, v in json.load(handle).items()}
    ib = ib_async.IB()
    started = time.perf_counter()
    await ib.connectAsync(args.host, args.port, clientId=args.client_id, timeout=20)
    try:
        if not args.check:
            await trade_all(ib, targets, args.account)
        elapsed = time.perf_counter() - started
        positions = await held(ib, args.account)
    finally:
        ib.disconnect()
    wrong = {s: (positions.get(s, 0.0), q) for s, q in targets.items() if positions.get(s) != q}
    extra = sorted(set(positions) - set(targets))
    ok = not wrong and not extra
    print(json.dumps({"seconds": elapsed, "ok": ok, "wrong": len(wrong), "extra": extra}))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("targets")
    parser.add_argument("--client-id", type=int, default=41)
    parser.add_argument("--account", default="DU0000001")
    parser.add_argument("--check", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
