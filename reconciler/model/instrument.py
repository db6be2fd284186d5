"""The instrument key: how the reconciler names one instrument everywhere (pure).

Responsible for the one rule that turns (symbol, security type, currency) into the key that
targets, positions, contracts, drift rows, plans and desired-state diffs are matched by: the
bare symbol for a US stock in USD, else `SYMBOL:SECTYPE:CURRENCY`. Must not look anything up
or know where the three parts come from. See ARCHITECTURE.md.
"""

from __future__ import annotations


def instrument_key(symbol: str, sec_type: str = "STK", currency: str = "USD") -> str:
    """`VTI` for a US stock in USD, `SAP:STK:EUR` or `ES:FUT:USD` otherwise."""
    if sec_type == "STK" and currency == "USD":
        return symbol
    return f"{symbol}:{sec_type}:{currency}"
