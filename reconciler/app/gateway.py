"""Which gateway a command talks to: the configured one, or an embedded simulator.

Responsible for parsing `--gateway` (`sim`, `sim:STATEFILE`, `HOST:PORT`) and, for `sim`,
running the offline simulator in a background thread for the duration of a command, so that
`reconcile plan`/`apply`/`demo` work on a fresh machine. Yields the `Settings` to connect
with. Must not import the IB client library (the simulator does not need it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from reconciler.model.settings import Settings, SettingsError


def parse_gateway(spec: str | None) -> tuple[str, str | None]:
    """('env', None) | ('sim', statefile or None) | ('hostport', 'HOST:PORT')."""
    if spec is None or spec == "":
        return "env", None
    if spec == "sim":
        return "sim", None
    if spec.startswith("sim:"):
        path = spec[4:]
        if not path:
            raise SettingsError("--gateway sim:STATEFILE needs a file name after 'sim:'")
        return "sim", path
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SettingsError(f"--gateway {spec!r}: use sim, sim:STATEFILE or HOST:PORT")
    return "hostport", spec


@contextmanager
def gateway_settings(
    spec: str | None, settings: Settings, *, journal: str | None = None
) -> Iterator[Settings]:
    kind, value = parse_gateway(spec)
    if kind == "env":
        yield settings
        return
    if kind == "hostport":
        host, _, port = value.rpartition(":")
        yield replace(settings, gateway_host=host, gateway_port=int(port))
        return
    from reconciler.sim import run_in_thread

    with run_in_thread(state_file=value, journal_path=journal) as sim:
        yield replace(settings, gateway_host=sim.host, gateway_port=sim.port)
