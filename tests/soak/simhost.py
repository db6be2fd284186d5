"""The soak's simulator process: `reconcile sim` plus a control channel on stdin.

Responsible for running the offline gateway exactly as `reconcile sim` does (a SimGateway
with a state file and a JSON-lines journal, listening on a fixed port, stopping on SIGTERM),
and for applying the soak's runtime faults that a scenario file cannot express: one JSON
command per stdin line (move a quote, switch simulator faults, a 1100/1101|1102 blip, drop a
client, cap the shares per fill), each answered by one JSON line on stdout. Must not decide
anything about the soak: it is the stand-in for a gateway that the soak can kill (SIGKILL)
and restart from its state file. The soak reads the broker's truth from the state file, not
from here, so a killed host loses nothing the soak needs.

Run: python tests/soak/simhost.py --port P --state F --journal J --scenario S.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys


def _command(gateway, command: dict) -> dict:
    op = command.get("op")
    if op == "ping":
        return {"ok": True}
    if op == "quote":
        gateway.set_quote(command["symbol"], bid=command["bid"], ask=command["ask"],
                          last=command.get("last"))
        return {"ok": True}
    if op == "faults":
        gateway.faults.update(command["spec"])
        return {"ok": True}
    if op == "clear_faults":
        gateway.faults.clear()
        gateway.book.default_liquidity = None
        return {"ok": True}
    if op == "disconnect":
        gateway.disconnect_client(int(command["client_id"]))
        return {"ok": True}
    if op == "liquidity":
        gateway.book.default_liquidity = command["shares"]
        return {"ok": True}
    if op == "drop_after_orders":  # accept the k-th order from now, then drop its client
        gateway.faults.drop_after_orders = gateway.faults.orders_seen + int(command["k"])
        return {"ok": True}
    if op == "clients":
        return {"ok": True, "clients": gateway.session_client_ids()}
    return {"ok": False, "error": f"unknown op {op!r}"}


async def _serve_control(gateway, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            stop.set()  # the soak went away: do not outlive it
            return
        try:
            command = json.loads(line)
            if command.get("op") == "blip":
                await gateway.faults.connectivity_blip(int(command.get("restored", 1102)),
                                                       float(command.get("duration", 0.2)))
                reply = {"ok": True}
            else:
                reply = _command(gateway, command)
            gateway.after_change()
        except Exception as exc:  # a bad command is answered, never fatal
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    from reconciler.sim import SimGateway

    gateway = SimGateway(args.scenario, port=args.port, state_file=args.state,
                         journal_path=args.journal)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    sys.stdout.write(json.dumps({"ready": True, "port": gateway.port}) + "\n")
    sys.stdout.flush()
    control = asyncio.create_task(_serve_control(gateway, stop))
    try:
        await stop.wait()
    finally:
        control.cancel()
        await gateway.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--scenario", required=True)
    asyncio.run(main(parser.parse_args()))
