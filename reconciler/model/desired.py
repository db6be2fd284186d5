"""Frozen model of the desired state: what operators committed to git.

Responsible for the value types the loader produces (`DesiredState`, `Portfolio`, `Target`,
`Instrument`, `RiskPolicy`, `Schedule`, ...). Percentages are stored as fractions (55% ->
0.55), durations as seconds. Must not read files, talk to a broker or know about YAML: the
loader in this package builds these, everything downstream only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from reconciler.model.instrument import instrument_key

TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
ORDER_TYPES = ("MKT", "LMT", "MIDPRICE", "ADAPTIVE")
TIMES_IN_FORCE = ("DAY", "IOC", "GTC")


@dataclass(frozen=True)
class SourceRef:
    """Where a document or field came from, for diagnostics downstream."""

    file: str
    line: int | None = None


@dataclass(frozen=True)
class Instrument:
    """A tradable instrument as the operator named it; a bare symbol is a US stock on SMART."""

    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str | None = None
    currency: str = "USD"
    con_id: int | None = None

    @cached_property
    def key(self) -> str:
        """Stable identity within a portfolio: the symbol, qualified when not a USD stock."""
        return instrument_key(self.symbol, self.sec_type, self.currency)


@dataclass(frozen=True)
class Target:
    """Exactly one of `weight` (fraction of the portfolio's capital) or `quantity`."""

    instrument: Instrument
    weight: float | None = None
    quantity: float | None = None
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Band:
    """Tolerance before trading: outside either bound means trade (None = bound not set).

    `absolute` is in weight points (0.01 = 1 percentage point of capital); `relative` is a
    fraction of the target weight (0.2 = 20% of the target).
    """

    absolute: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class ExecutionPolicy:
    order_type: str = "LMT"
    limit_offset_bps: float = 5.0
    time_in_force: str = "DAY"
    ttl_seconds: float = 120.0
    outside_rth: bool = False


@dataclass(frozen=True)
class Portfolio:
    name: str
    account: str
    targets: tuple[Target, ...]
    cash_reserve: float = 0.0
    capital: float | None = None
    band: Band = Band(absolute=0.01, relative=None)
    min_trade_notional: float = 0.0
    unmanaged: str = "ignore"  # ignore | liquidate
    sells: str = "allowed"  # allowed | buyOnly
    execution: ExecutionPolicy = ExecutionPolicy()
    risk_policy: str = "default"
    source: SourceRef | None = field(default=None, compare=False)

    @property
    def buy_only(self) -> bool:
        return self.sells == "buyOnly"


@dataclass(frozen=True)
class RiskPolicy:
    """Limits that bind a portfolio. None means the limit is not set in git."""

    name: str
    trading_state: str = "ACTIVE"
    max_order_notional: float | None = None
    max_position_notional: float | None = None
    max_leverage: float | None = None
    max_orders_per_cycle: int | None = None
    max_cycle_turnover: float | None = None  # fraction of NAV
    max_daily_notional: float | None = None
    max_price_age_seconds: float | None = None
    max_spread: float | None = None  # fraction of mid (0.005 = 50 bps)
    restricted: tuple[str, ...] = ()  # instrument keys / symbols
    on_breach: str = "clip"  # clip | deny
    allow_delayed_data: bool = False  # trade on delayed/frozen quotes (market data type != 1)
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TradingWindow:
    """When cycles may trade: not in the first/last N minutes of the regular session."""

    avoid_open_minutes: int = 0
    avoid_close_minutes: int = 0


@dataclass(frozen=True)
class Schedule:
    name: str
    interval_seconds: float | None = None
    cron: str | None = None
    timezone: str = "America/New_York"
    window: TradingWindow = TradingWindow()
    self_heal: bool = False
    accounts: tuple[str, ...] = ()  # empty = every portfolio
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LockedInstrument:
    """One entry of `instruments.lock.yaml`: what a symbol resolved to."""

    key: str
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    min_tick: float
    size_increment: float


class UnknownAccountError(ValueError):
    """An account was asked for that no portfolio of the desired state manages."""


@dataclass(frozen=True)
class DesiredState:
    portfolios: tuple[Portfolio, ...]
    risk_policies: Mapping[str, RiskPolicy]
    schedules: tuple[Schedule, ...]
    content_hash: str
    directory: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_problem: str | None = None  # why git would not tell the commit (ownership, permissions)
    lock: Mapping[str, LockedInstrument] = field(default_factory=dict)

    def portfolio_for(self, account: str) -> Portfolio | None:
        return next((p for p in self.portfolios if p.account == account), None)

    def portfolios_for(self, accounts: Sequence[str] | None) -> tuple[Portfolio, ...]:
        """The one account-selection rule (plan, apply, drift report and the planner).

        No accounts (None or empty) selects every portfolio; otherwise the portfolios of the
        named accounts, in desired-state order, each once. An account without a portfolio
        raises `UnknownAccountError` naming it: a typo must never plan nothing silently.
        """
        if not accounts:
            return self.portfolios
        known = self.accounts
        unknown = [a for a in dict.fromkeys(accounts) if a not in known]
        if unknown:
            raise UnknownAccountError(
                f"no Portfolio in the desired state for account(s) {', '.join(unknown)} "
                f"(desired state has {', '.join(known) or 'none'})"
            )
        wanted = set(accounts)
        return tuple(p for p in self.portfolios if p.account in wanted)

    def policy_for(self, portfolio: Portfolio) -> RiskPolicy:
        return self.risk_policies[portfolio.risk_policy]

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(p.account for p in self.portfolios)
