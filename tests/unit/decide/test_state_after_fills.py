"""The book after an apply from the cycle's own snapshot, the fills and the positions now."""

from __future__ import annotations

import pytest
from builders import NOW, Book

from reconciler.decide.drift import FillDelta, state_after_fills
from reconciler.model.actual import Position

ACCOUNT = "DU0000001"


def test_state_after_fills_moves_cash_nav_and_positions_by_what_was_filled():
    book = Book(ACCOUNT, cash=10_000.0).hold("VTI", 10, 100.0).quote_only("BND", 50.0)
    before = book.actual()
    vti, bnd = book.contract_of("VTI"), book.contract_of("BND")
    after_positions = {ACCOUNT: (
        Position(ACCOUNT, vti.con_id, "VTI", "STK", "USD", 10, 100.0),
        Position(ACCOUNT, bnd.con_id, "BND", "STK", "USD", 20, 50.1),
    )}
    fills = [FillDelta(ACCOUNT, bnd.con_id, "USD", "BUY", 20, 50.1, commission=1.0)]
    after = state_after_fills(before, after_positions, fills, now=NOW).accounts[ACCOUNT]
    was = before.accounts[ACCOUNT]
    assert after.cash["USD"] == pytest.approx(was.cash["USD"] - 20 * 50.1 - 1.0)
    # Valued at the cycle's quote (50.0): paid 2.00 over it plus 1.00 commission.
    assert after.net_liquidation == pytest.approx(was.net_liquidation - 3.0)
    assert after.gross_position_value == pytest.approx(was.gross_position_value + 1000.0)
    assert after.held_by_con_id() == {vti.con_id: 10, bnd.con_id: 20}


def test_state_after_fills_keeps_accounts_without_positions_given_and_the_cycle_quotes():
    before = Book(ACCOUNT).hold("VTI", 10, 100.0).actual()
    after = state_after_fills(before, {}, [], now=NOW)
    assert after.accounts == before.accounts
    assert after.quotes == before.quotes and after.contracts == before.contracts
