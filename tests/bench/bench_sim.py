"""Benchmark of the simulator: connect time and order round trips per second.

Run: python tests/bench/bench_sim.py [--orders N] [--library ib_async|ib_insync|both]

The simulator runs in its own process (`reconcile sim`), as it does for the reconciler, and
the real client library drives it over TCP with its request throttle off. A round trip is a
market order from placeOrder until the client sees it Filled (ack, fill, commission, position
and account pushes included). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import socket
import statistics
import subprocess
import sys
import time

from reconciler.util.polling import poll_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        parts = handle.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def start_simulator(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sim", "--port", str(port),
         "--accounts", "DU0000001"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    # Another process's listening socket: there is no event to await, so poll with a deadline.
    if poll_until(listening, timeout=20, interval=0.05):
        return proc
    proc.kill()
    raise SystemExit("simulator did not start")


async def until_done(trade) -> None:
    """Until the trade is final, woken by its own status events (no polling)."""
    while not trade.isDone():
        await trade.statusEvent


async def bench(library: str, port: int, orders: int, client_id: int, sim_pid: int) -> dict:
    lib = importlib.import_module(library)
    connect_times = []
    for i in range(5):
        ib = lib.IB()
        started = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=client_id + 100 + i, timeout=10)
        connect_times.append(time.perf_counter() - started)
        ib.disconnect()
    ib = lib.IB()
    ib.client.MaxRequests = 0  # throttle off: measure the simulator, not the client's pacing
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=10)
    [contract] = await ib.qualifyContractsAsync(lib.Stock("SGOV", "SMART", "USD"))

    sequential = []
    for _ in range(50):
        started = time.perf_counter()
        trade = ib.placeOrder(contract, lib.MarketOrder("BUY", 1, account="DU0000001"))
        await until_done(trade)
        sequential.append(time.perf_counter() - started)

    sim_cpu_before = cpu_seconds(sim_pid)
    started = time.perf_counter()
    trades = [ib.placeOrder(contract, lib.MarketOrder("SELL" if i % 2 else "BUY", 1,
                                                      account="DU0000001"))
              for i in range(orders)]
    try:
        await asyncio.wait_for(asyncio.gather(*(until_done(t) for t in trades)), 120)
    except TimeoutError:
        raise SystemExit("orders did not complete in 120 s") from None
    elapsed = time.perf_counter() - started
    sim_cpu = cpu_seconds(sim_pid) - sim_cpu_before
    filled = sum(t.orderStatus.status == "Filled" for t in trades)
    ib.disconnect()
    return {
        "library": library,
        "connect_median_ms": statistics.median(connect_times) * 1000,
        "sequential_rtt_median_ms": statistics.median(sequential) * 1000,
        "pipelined_orders": orders,
        "filled": filled,
        "pipelined_per_s": orders / elapsed,
        "sim_cpu_ms_per_order": sim_cpu / orders * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--library", default="both", choices=["ib_async", "ib_insync", "both"])
    args = parser.parse_args()
    libraries = ["ib_async", "ib_insync"] if args.library == "both" else [args.library]
    print(f"{os.cpu_count()} CPUs; a fresh simulator process per library")
    for library in libraries:
        port = free_port()
        proc = start_simulator(port)
        try:
            result = asyncio.run(bench(library, port, args.orders, client_id=1,
                                       sim_pid=proc.pid))
        finally:
            proc.terminate()
            proc.wait(10)
        capacity = 1000 / result["sim_cpu_ms_per_order"] if result["sim_cpu_ms_per_order"] \
            else float("inf")
        print(f"{library:10s} connect {result['connect_median_ms']:.1f} ms (median of 5) | "
              f"sequential MKT round trip {result['sequential_rtt_median_ms']:.2f} ms | "
              f"pipelined {result['filled']}/{result['pipelined_orders']} filled at "
              f"{result['pipelined_per_s']:.0f} round trips/s | simulator CPU "
              f"{result['sim_cpu_ms_per_order']:.2f} ms/order (capacity ~{capacity:.0f}/s)")


if __name__ == "__main__":
    main()
