"""Errors the broker adapter raises: one hierarchy, each message actionable on its own.

Responsible for the `BrokerError` family (unreachable gateway, wrong port, client id in use,
unmanaged account, unresolved instruments, stale lock, incomplete snapshot, order problems).
Messages say what happened and what to check, so the CLI prints `str(error)` and nothing
else. Must not import the IB client library or know how errors are detected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.model.actual import SnapshotError as _ActualSnapshotError


class BrokerError(Exception):
    """Base of every error the broker adapter raises on purpose."""


class GatewayUnreachable(BrokerError):
    """Nothing accepted the TCP connection (refused, unknown host, network down)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host, self.port = host, port
        super().__init__(
            f"cannot connect to {host}:{port} ({reason}): is IB Gateway (or `reconcile sim`) "
            f"running on {host}:{port} with the API enabled? Set IB_GATEWAY_HOST/IB_GATEWAY_PORT "
            "to where it listens."
        )


class NotAnApiEndpoint(BrokerError):
    """Something accepted the connection but never completed the TWS API handshake."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port = host, port
        super().__init__(
            f"{host}:{port} accepted the connection but did not answer the TWS API handshake "
            f"within {timeout:g}s: is this the gateway's API port (IB Gateway 4002 paper / 4001 "
            "live, TWS 7497 / 7496), is 'Enable ActiveX and Socket Clients' on, and is this "
            "host in the gateway's trusted IPs?"
        )


class ClientIdInUse(BrokerError):
    """The gateway refused the client id (error 326)."""

    def __init__(self, client_id: int, host: str, port: int) -> None:
        self.client_id = client_id
        super().__init__(
            f"client id {client_id} is already in use on {host}:{port} (error 326): another "
            "reconciler or tool is connected with it. Stop it, or set IB_CLIENT_ID to a free id."
        )


class StartupSyncIncomplete(BrokerError):
    """The connection opened but the client's start-up synchronisation did not finish."""

    def __init__(self, host: str, port: int, missing: Sequence[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(
            f"connected to {host}:{port} but the start-up synchronisation did not finish "
            f"({'; '.join(self.missing) or 'connection closed'}): the gateway may be "
            "overloaded or still logging in; retry, or raise IB_CONNECT_TIMEOUT."
        )


class ConnectionLost(BrokerError):
    """The connection to the gateway closed while a request was outstanding."""


class NotConnected(BrokerError):
    """A request was made on a broker that is not (or no longer) connected."""


class ReadOnlyConnection(BrokerError):
    """An order operation was attempted on a connection opened read-only."""


class AccountNotManaged(BrokerError):
    """An account was asked for that the connected gateway does not manage."""

    def __init__(self, unknown: Iterable[str], managed: Iterable[str]) -> None:
        self.unknown = tuple(unknown)
        self.managed = tuple(managed)
        super().__init__(
            f"account(s) {', '.join(self.unknown)} not managed by this gateway; it manages "
            f"{', '.join(self.managed) or 'no accounts'}. Check the desired state's account ids "
            "and that you are logged in to the right user (paper vs live)."
        )


class SnapshotError(BrokerError, _ActualSnapshotError):
    """The broker's picture is incomplete; the cycle must stop (missing data is never flat)."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("incomplete snapshot, nothing planned: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Candidate:
    """One contract an ambiguous instrument could mean."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    long_name: str = ""

    def render(self) -> str:
        where = self.exchange + (f"/{self.primary_exchange}" if self.primary_exchange else "")
        name = f" {self.long_name!r}" if self.long_name else ""
        return f"conId={self.con_id} {self.symbol} {self.sec_type} {where} {self.currency}{name}"


@dataclass(frozen=True)
class ResolutionProblem:
    """Why one instrument could not be resolved (kind: unknown, ambiguous, lock, error)."""

    key: str
    kind: str
    message: str
    candidates: tuple[Candidate, ...] = ()
    field: str = ""
    locked: object = None
    gateway: object = None

    def render(self) -> str:
        text = f"{self.key}: {self.message}"
        if self.candidates:
            text += " — candidates: " + "; ".join(c.render() for c in self.candidates)
        return text


class ResolutionError(BrokerError):
    """One or more instruments are unknown, ambiguous or disagree with the lock file."""

    def __init__(self, problems: Iterable[ResolutionProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n  ".join(p.render() for p in self.problems)
        super().__init__(
            f"{len(self.problems)} instrument(s) could not be resolved:\n  {lines}\n"
            "Pin exchange/primaryExchange/currency/conId in the desired state to disambiguate; "
            "run `reconcile lock` to refresh the lock file after reviewing a change."
        )

    @property
    def mismatches(self) -> tuple[ResolutionProblem, ...]:
        return tuple(p for p in self.problems if p.kind == "lock")


class LockMismatch(ResolutionError):
    """Every problem is a lock entry that no longer matches what the gateway reports."""


class OrderError(BrokerError):
    """An order could not be built or sent (bad values, paper-only refusal, no price)."""


class RequestTimeout(BrokerError):
    """A request got no complete answer within its timeout."""
