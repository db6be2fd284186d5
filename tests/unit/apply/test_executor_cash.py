"""How much cash the sells fell short, per account and in base currency (pure)."""

import dataclasses

from builders import Book, planned

from reconciler.apply.executor import not_sent_outcome, sell_shortfall_by_account


def sell(account, key, quantity, price, *, fx=1.0, leg=1):
    order = planned(Book().instrument(key, price), key, "SELL", quantity)
    return dataclasses.replace(
        order, account=account, leg=leg, arrival_price=price, est_notional=quantity * price * fx
    )


def filled(order, quantity, avg):
    outcome = not_sent_outcome("p", order)
    outcome.filled, outcome.avg_price, outcome.status = quantity, avg, "FILLED"
    return outcome


def test_a_sell_that_filled_as_planned_leaves_no_shortfall():
    s = sell("DU0000001", "VTI", 10, 100.0)
    assert sell_shortfall_by_account([s], [filled(s, 10, 100.0)]) == {"DU0000001": 0.0}


def test_each_account_keeps_its_own_shortfall():
    a = sell("DU0000001", "VTI", 10, 100.0, leg=1)
    b = sell("DU0000002", "BND", 10, 50.0, leg=2)
    result = sell_shortfall_by_account([a, b], [filled(a, 5, 100.0), filled(b, 10, 51.0)])
    assert result["DU0000001"] == 500.0  # half of 1,000 not raised
    assert result["DU0000002"] == -10.0  # raised 10 more: never lent to the other account


def test_a_foreign_currency_sell_is_converted_at_the_plans_rate():
    # 10 shares at 100 EUR planned as 1,100 USD (EUR at 1.10); filled 10 at 90 EUR = 990 USD.
    s = sell("DU0000001", "SAP", 10, 100.0, fx=1.10)
    [(account, shortfall)] = sell_shortfall_by_account([s], [filled(s, 10, 90.0)]).items()
    assert account == "DU0000001" and abs(shortfall - 110.0) < 1e-9


def test_an_unfilled_sell_falls_short_by_its_whole_notional():
    s = sell("DU0000001", "VTI", 10, 100.0)
    assert sell_shortfall_by_account([s], [not_sent_outcome("p", s)]) == {"DU0000001": 1000.0}


def buy(key, quantity, price, leg):
    order = planned(Book().instrument(key, price), key, "BUY", quantity)
    return dataclasses.replace(order, leg=leg)


def test_a_small_shortfall_leaves_buys_alone_when_the_budget_still_covers_them():
    from reconciler.apply.executor import scale_buys_to_cash

    buys = [buy("VEA", 10, 50.0, 3), buy("VWO", 10, 45.0, 4)]
    kept, notes = scale_buys_to_cash(buys, 0.10, {}, cash_for_buys=95_000.0)
    assert [b.quantity for b in kept] == [10, 10] and notes == []


def test_a_shortfall_that_eats_into_the_buys_budget_shrinks_them():
    from reconciler.apply.executor import scale_buys_to_cash

    buys = [buy("VEA", 10, 50.0, 3), buy("VWO", 10, 45.0, 4)]
    need = sum(b.est_notional + b.est_commission for b in buys)
    kept, notes = scale_buys_to_cash(buys, 300.0, {}, cash_for_buys=need + 100.0)
    assert sum(b.est_notional + b.est_commission for b in kept) <= need - 200.0
    assert all(b.quantity < 10 for b in kept) and notes
