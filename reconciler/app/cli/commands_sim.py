"""CLI commands: sim family. Parse, call the library, render, exit; no logic here.

`reconcile sim` runs the offline IB Gateway simulator until SIGINT/SIGTERM, then exits 0.
"""

from __future__ import annotations

import click

from reconciler.app.cli.common import fail


def register(cli: click.Group) -> None:
    """Attach this family's commands to the top-level group."""
    cli.add_command(sim)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4002, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (4002 is IB Gateway's paper port; 0 picks a free one).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False),
              help="JSON state file: loaded at start, written atomically after every change.")
@click.option("--scenario", type=click.Path(dir_okay=False),
              help="Scenario YAML (accounts, instruments, market, latency, faults).")
@click.option("--accounts", default="", help="Comma-separated account ids; an account named "
              "only here starts with 1,000,000 USD cash and no positions.")
@click.option("--seed", type=int, default=None, help="Seed of the price model (overrides the "
              "scenario's).")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False),
              help="Append every message received and sent to this file (JSON lines).")
def sim(host, port, state_file, scenario, accounts, seed, journal_path) -> None:
    """Run the offline IB Gateway simulator (TWS API over TCP) until interrupted.

    With neither --accounts nor --scenario it starts the built-in demo scenario
    (DU0000001 and DU0000002).
    """
    import asyncio
    import logging
    import signal

    from reconciler.sim import ScenarioError, SimGateway
    from reconciler.sim.state import StateFileError

    account_ids = tuple(a.strip() for a in accounts.split(",") if a.strip())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        gateway = SimGateway(scenario, host=host, port=port, state_file=state_file,
                             accounts=account_ids, seed=seed, journal_path=journal_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await gateway.start()
        click.echo(f"simulator listening on {gateway.host}:{gateway.port} "
                   f"(accounts {','.join(gateway.managed_accounts)}; "
                   f"scenario {gateway.scenario.name})", err=True)
        try:
            await stop.wait()
        finally:
            await gateway.stop()
            click.echo("simulator stopped", err=True)

    try:
        asyncio.run(main())
    except (ScenarioError, StateFileError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
