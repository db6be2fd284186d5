"""Valuing the simulated accounts: net liquidation, cash, buying power, account values,
portfolio and position rows, in the account's base currency.

Responsible for what the gateway reports about an account (``Valuation`` marks instruments
and converts currencies; the functions turn an ``Account`` into the numbers and rows that
updateAccountValue, accountSummary, updatePortfolio and position carry). Must not change an
account or know about orders beyond the cash they reserve, which callers pass in (see
ARCHITECTURE.md at the repository root).
"""

from __future__ import annotations

from reconciler.sim.book.records import Account, BookError
from reconciler.sim.market import DEFAULT_FX, Instrument, Universe
from reconciler.sim.prices import PriceModel


class Valuation:
    """Instrument lookup, marks (last, else mid, else close) and exchange rates."""

    def __init__(
        self, universe: Universe, prices: PriceModel, fx: dict[str, float] | None = None
    ) -> None:
        self.universe = universe
        self.prices = prices
        self.fx = {**DEFAULT_FX, **(fx or {})}

    def instrument(self, con_id: int) -> Instrument:
        inst = self.universe.get(con_id)
        if inst is None:
            raise BookError(200, f"unknown conId {con_id}")
        return inst

    def mark(self, inst: Instrument) -> float:
        return self.prices.quote(inst).mark or inst.price

    def fx_rate(self, currency: str, base: str = "USD") -> float:
        """Units of `base` per unit of `currency`."""
        if currency == base:
            return 1.0
        if currency not in self.fx or base not in self.fx:
            raise BookError(200, f"no exchange rate for {currency}/{base}")
        return self.fx[currency] / self.fx[base]


def summary_values(
    account: Account, value: Valuation, reserved_for_buys: float
) -> dict[str, float]:
    """The headline numbers in base currency."""
    base = account.base_currency
    cash = sum(amount * value.fx_rate(cur, base) for cur, amount in account.cash.items())
    long_value = short_value = unrealized = realized = 0.0
    for holding in account.holdings.values():
        inst = value.instrument(holding.con_id)
        rate = value.fx_rate(inst.currency, base)
        market_value = holding.quantity * value.mark(inst) * rate
        if market_value >= 0:
            long_value += market_value
        else:
            short_value += market_value
        unrealized += (value.mark(inst) - holding.avg_cost) * holding.quantity * rate
        realized += holding.realized_pnl * rate
    gross = long_value - short_value
    nlv = cash + long_value + short_value
    margin = account.account_type == "margin"
    buying_power = max(0.0, 2 * nlv - gross) if margin else max(0.0, cash)
    available = (
        max(0.0, nlv - 0.5 * gross) if margin else max(0.0, buying_power - reserved_for_buys)
    )
    return {
        "NetLiquidation": nlv,
        "TotalCashValue": cash,
        "SettledCash": cash,
        "GrossPositionValue": gross,
        "StockMarketValue": long_value + short_value,
        "EquityWithLoanValue": nlv,
        "BuyingPower": buying_power,
        "AvailableFunds": available,
        "ExcessLiquidity": available,
        "InitMarginReq": 0.5 * gross if margin else 0.0,
        "MaintMarginReq": 0.25 * gross if margin else 0.0,
        "UnrealizedPnL": unrealized,
        "RealizedPnL": realized,
        "Leverage-S": gross / nlv if nlv > 0 else 0.0,
    }


def account_value_rows(
    account: Account, value: Valuation, summary: dict[str, float]
) -> list[tuple[str, str, str]]:
    """(key, value, currency) rows as updateAccountValue carries them."""
    account_id, base = account.account_id, account.base_currency
    rows: list[tuple[str, str, str]] = [
        ("AccountCode", account_id, ""),
        ("AccountType", "INDIVIDUAL" if account.account_type == "cash" else "MARGIN", ""),
        ("AccountOrGroup", account_id, base),
        ("Currency", base, base),
        ("RealCurrency", base, base),
        ("TradingType-S", "STKCASH" if account.account_type == "cash" else "STKMRGN", ""),
    ]
    for key, amount in summary.items():
        rows.append((key, _money(amount), base))
    currencies = sorted(
        set(account.cash)
        | {value.instrument(h.con_id).currency for h in account.holdings.values()}
        | {base}
    )
    total_cash_base = 0.0
    for cur in currencies:
        amount = account.cash.get(cur, 0.0)
        stock_value = sum(
            h.quantity * value.mark(inst)
            for h in account.holdings.values()
            if (inst := value.instrument(h.con_id)).currency == cur
        )
        total_cash_base += amount * value.fx_rate(cur, base)
        rows += [
            ("CashBalance", _money(amount), cur),
            ("TotalCashBalance", _money(amount), cur),
            ("ExchangeRate", _rate(value.fx_rate(cur, base)), cur),
            ("StockMarketValue", _money(stock_value), cur),
            ("NetLiquidationByCurrency", _money(amount + stock_value), cur),
        ]
    rows += [
        ("CashBalance", _money(total_cash_base), "BASE"),
        ("TotalCashBalance", _money(total_cash_base), "BASE"),
        ("ExchangeRate", "1.00", "BASE"),
        ("NetLiquidationByCurrency", _money(summary["NetLiquidation"]), "BASE"),
        ("StockMarketValue", _money(summary["StockMarketValue"]), "BASE"),
    ]
    return rows


def portfolio_rows(
    account: Account, value: Valuation
) -> list[tuple[Instrument, float, float, float, float, float, float]]:
    """(instrument, quantity, market price, market value, avg cost, unrealized, realized)."""
    rows = []
    for holding in account.holdings.values():
        inst = value.instrument(holding.con_id)
        price = value.mark(inst)
        market_value = holding.quantity * price
        rows.append(
            (
                inst,
                holding.quantity,
                price,
                market_value,
                holding.avg_cost,
                market_value - holding.quantity * holding.avg_cost,
                holding.realized_pnl,
            )
        )
    return rows


def position_rows(account: Account, value: Valuation) -> list[tuple[Instrument, float, float]]:
    """(instrument, quantity, avg cost) as position messages carry them."""
    return [(value.instrument(h.con_id), h.quantity, h.avg_cost) for h in account.holdings.values()]


def _money(amount: float) -> str:
    return f"{amount:.2f}"


def _rate(rate: float) -> str:
    return f"{rate:.6f}".rstrip("0").rstrip(".") if rate != 1.0 else "1.00"
