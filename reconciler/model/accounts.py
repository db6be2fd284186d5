"""What an IBKR account id says about the account: the one paper-account rule.

Every check that depends on paper vs live (the mode gate, `health --check-orders`, the
broker's test-order refusal) asks `is_paper_account`. Must not look anything up.
"""

from __future__ import annotations

# IBKR paper accounts: DU... (individual) and DF... (advisor master). Anything else is
# treated as live, so an unfamiliar id gets the stricter handling.
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")


def is_paper_account(account: str | None) -> bool:
    """True for an IBKR paper account id (DU..., DF...); False for live ids and for None."""
    return bool(account) and account.strip().upper().startswith(PAPER_ACCOUNT_PREFIXES)
