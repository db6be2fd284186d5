"""The outcome classifier: one answer for one broker state, for executor and recovery alike."""

import pytest

from reconciler.apply.outcome import (
    CANCELLED,
    FILLED,
    NEVER_REACHED,
    PARTIAL_CANCELLED,
    REJECTED,
    UNKNOWN,
    WORKING,
    Evidence,
    classify,
)

# ------------------------------------------------------------------ live evidence


def test_live_cancel_confirmed_by_the_gateway_with_no_fills_is_cancelled():
    v = classify(
        Evidence(quantity=10, status="Cancelled", acknowledged=True, error_codes=frozenset({202}))
    )
    assert (v.status, v.kind, v.filled, v.ask_broker) == (CANCELLED, "CANCEL", 0.0, False)


def test_live_cancel_after_a_partial_fill_whose_fills_arrived_is_partial_cancelled():
    v = classify(
        Evidence(
            quantity=10,
            fill_shares=4,
            status="Cancelled",
            acknowledged=True,
            reported_filled=4,
            error_codes=frozenset({202}),
        )
    )
    assert (v.status, v.kind, v.filled) == (PARTIAL_CANCELLED, "CANCEL", 4.0)


def test_live_cancelled_after_error_10148_is_not_believed_and_the_broker_is_asked():
    # ib_async/ib_insync flip the trade to Cancelled on the cancel's 10148 ("state: Filled").
    v = classify(Evidence(quantity=10, status="Cancelled", error_codes=frozenset({10148})))
    assert (v.status, v.kind, v.ask_broker) == (UNKNOWN, None, True)
    assert "10148" in v.reason


def test_live_cancelled_with_10148_is_not_believed_even_when_the_gateway_had_acknowledged():
    v = classify(
        Evidence(
            quantity=10, status="Cancelled", acknowledged=True, error_codes=frozenset({10148, 202})
        )
    )
    assert v.ask_broker and not v.final


def test_live_cancel_whose_fills_never_arrived_asks_the_broker():
    # The gateway's status says 6 filled, but no execDetails reached us (withheld).
    v = classify(Evidence(quantity=10, status="Cancelled", acknowledged=True, reported_filled=6))
    assert (v.kind, v.ask_broker, v.filled) == (None, True, 6.0)


def test_live_order_the_gateway_never_reported_on_asks_the_broker():
    v = classify(Evidence(quantity=10, status="PendingSubmit"))
    assert v.ask_broker and "never reported" in v.reason


def test_live_fill_of_the_whole_quantity_is_filled():
    v = classify(
        Evidence(
            quantity=10, fill_shares=10, status="Filled", acknowledged=True, reported_filled=10
        )
    )
    assert (v.status, v.kind, v.filled) == (FILLED, "FILL", 10.0)


def test_live_filled_status_with_fills_still_missing_asks_the_broker():
    v = classify(
        Evidence(quantity=10, fill_shares=3, status="Filled", acknowledged=True, reported_filled=3)
    )
    assert v.ask_broker and "3 of 10" in v.reason


def test_live_rejection_with_nothing_filled_is_rejected_without_asking():
    v = classify(Evidence(quantity=10, status="Cancelled", error_codes=frozenset({201})))
    assert (v.status, v.kind, v.ask_broker) == (REJECTED, "REJ", False)


def test_live_warning_does_not_make_a_confirmed_cancel_inconclusive():
    v = classify(
        Evidence(
            quantity=10,
            status="Cancelled",
            acknowledged=True,
            error_codes=frozenset({399, 2104, 202}),
        )
    )
    assert (v.status, v.kind) == (CANCELLED, "CANCEL")


def test_live_order_still_submitted_is_not_final():
    v = classify(Evidence(quantity=10, status="Submitted", acknowledged=True))
    assert (v.kind, v.ask_broker) == (None, True)


# ------------------------------------------------------------------ the broker's answer


def broker(**fields) -> Evidence:
    return Evidence(quantity=10, looked_up=True, **fields)


def test_completed_filled_with_every_execution_is_filled():
    v = classify(broker(fill_shares=10, completed_status="Filled", completed_filled=10))
    assert (v.status, v.kind, v.filled, v.fills_missing) == (FILLED, "FILL", 10.0, 0.0)


def test_the_10148_case_resolves_to_filled_once_the_broker_is_asked():
    v = classify(
        broker(
            fill_shares=10,
            status="Cancelled",
            error_codes=frozenset({10148}),
            completed_status="Filled",
            completed_filled=10,
        )
    )
    assert (v.status, v.kind, v.filled) == (FILLED, "FILL", 10.0)


def test_completed_cancelled_after_a_partial_fill_is_partial_cancelled():
    v = classify(broker(fill_shares=4, completed_status="Cancelled", completed_filled=4))
    assert (v.status, v.kind, v.filled) == (PARTIAL_CANCELLED, "CANCEL", 4.0)


def test_completed_inactive_with_nothing_filled_is_rejected():
    v = classify(broker(completed_status="Inactive"))
    assert (v.status, v.kind) == (REJECTED, "REJ")


def test_still_working_at_the_broker_is_unresolved():
    v = classify(broker(fill_shares=2, working_status="Submitted"))
    assert (v.status, v.kind, v.filled) == (WORKING, None, 2.0)


def test_executions_without_an_order_record_mean_filled_or_partly_filled():
    assert classify(broker(fill_shares=10)).status == FILLED
    partial = classify(broker(fill_shares=7))
    assert (partial.status, partial.kind, partial.filled) == (PARTIAL_CANCELLED, "CANCEL", 7.0)


def test_filled_shares_without_executions_stay_unresolved_while_the_owner_may_learn_them():
    v = classify(broker(fill_shares=4, completed_status="Filled", completed_filled=10))
    assert (v.status, v.kind, v.fills_missing) == (UNKNOWN, None, 6.0)


def test_filled_shares_without_executions_are_final_for_recovery_and_say_what_is_missing():
    v = classify(
        broker(fill_shares=4, completed_status="Filled", completed_filled=10, owner_gone=True)
    )
    assert (v.status, v.kind, v.filled, v.fills_missing) == (FILLED, "FILL", 10.0, 6.0)
    assert "6 filled shares have no execution record" in v.reason


@pytest.mark.parametrize(
    ("owner_gone", "expected"), [(True, (NEVER_REACHED, "RESOLVED")), (False, (UNKNOWN, None))]
)
def test_an_order_the_broker_has_no_record_of(owner_gone, expected):
    v = classify(broker(owner_gone=owner_gone))
    assert (v.status, v.kind) == expected


def test_an_order_rejected_live_that_the_broker_has_no_record_of_is_rejected():
    v = classify(broker(error_codes=frozenset({201})))
    assert (v.status, v.kind) == (REJECTED, "REJ")
