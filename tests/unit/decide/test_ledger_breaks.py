"""Ledger vs broker: a break is a position the last snapshot plus recorded fills can't explain."""

from reconciler.decide.drift import ledger_breaks


def test_no_break_when_snapshot_plus_fills_equals_broker():
    assert ledger_breaks("DU0000001", {1: ("VTI", 100.0)}, {1: 30.0}, {1: ("VTI", 130.0)}) == []


def test_manual_sale_the_ledger_never_saw_is_a_break():
    [b] = ledger_breaks("DU0000001", {1: ("VTI", 100.0)}, {}, {1: ("VTI", 60.0)})
    assert (b.symbol, b.expected, b.actual) == ("VTI", 100.0, 60.0)
    assert b.render() == "LEDGER_BREAK: account=DU0000001 symbol=VTI conId=1 ledger=100 broker=60"


def test_position_closed_at_the_broker_is_a_break():
    [b] = ledger_breaks("DU0000001", {1: ("VTI", 100.0)}, {}, {})
    assert b.actual == 0.0


def test_new_position_without_recorded_fills_is_a_break():
    [b] = ledger_breaks("DU0000001", {}, {}, {2: ("BND", 5.0)})
    assert (b.con_id, b.expected, b.actual) == (2, 0.0, 5.0)


def test_sold_out_position_explained_by_fills_is_not_a_break():
    assert ledger_breaks("DU0000001", {1: ("VTI", 100.0)}, {1: -100.0}, {}) == []


def test_detect_breaks_when_the_last_snapshot_was_flat_then_a_new_position_is_a_break(tmp_path):
    """A flat snapshot has no position rows; it is still a snapshot the ledger must explain."""
    from builders import Book

    from reconciler.cycle.common import detect_breaks
    from reconciler.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert detect_breaks(store, Book().hold("VTI", 5, 290.0).actual(), ["DU0000001"]) == []
        store.record_position_snapshot(None, "DU0000001", [])  # flat
        [b] = detect_breaks(store, Book().hold("VTI", 5, 290.0).actual(), ["DU0000001"])
        assert (b.symbol, b.expected, b.actual) == ("VTI", 0.0, 5.0)
        assert detect_breaks(store, Book().actual(), ["DU0000001"]) == []
    finally:
        store.close()
