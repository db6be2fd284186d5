"""The soak's invariant checks, with values: each one finds the violation it exists for and
stays quiet when the records are sound (a check that can never fail proves nothing)."""

from __future__ import annotations

import json

from soak import invariants as inv

VTI, BND = 1001, 1002


def order(ref: str, *, qty: float = 10, price: float = 100.0, account: str = "DU0000001"):
    return inv.BrokerOrder(ref, account, VTI, "BUY", qty, price, qty, "Filled", 31, 1)


def execution(exec_id: str, ref: str = "rc-a-1", shares: float = 10):
    return inv.BrokerExecution(exec_id, ref, "DU0000001", VTI, "BOT", shares)


def broker(orders=(), executions=(), holdings=None):
    return inv.BrokerState(tuple(orders), tuple(executions), holdings or {})


def test_orders_placed_once_when_a_ref_is_sent_twice_then_names_it():
    placed = [(31, "rc-a-1"), (31, "rc-a-2"), (32, "rc-a-1")]
    assert inv.orders_placed_once(placed, broker()) == ["orderRef rc-a-1 placed 2 times at the broker"]
    assert inv.orders_placed_once(placed[:2], broker([order("rc-a-1"), order("rc-a-2")])) == []


def test_orders_placed_once_when_the_book_holds_a_ref_twice_then_names_it():
    problems = inv.orders_placed_once([], broker([order("rc-a-1"), order("rc-a-1")]))
    assert problems == ["orderRef rc-a-1 is 2 orders in the broker's book"]


def test_executions_recorded_once_finds_duplicates_phantoms_and_missing_fills():
    state = broker(executions=[execution("e1"), execution("e2")])
    assert inv.executions_recorded_once(state, ["e1", "e1", "e9"], complete=False) == [
        "execution e1 recorded 2 times in the ledger",
        "ledger fill e9 is no execution of the broker",
    ]
    assert inv.executions_recorded_once(state, ["e1"], complete=False) == []
    missing = inv.executions_recorded_once(state, ["e1"], complete=True)
    assert missing == ["broker execution e2 (rc-a-1 BOT 10) missing from the ledger"]


def test_positions_explained_unless_a_break_was_raised():
    assert inv.positions_explained("DU0000001", {VTI: 10}, {VTI: 10, BND: 0.0}, set()) == []
    problem = inv.positions_explained("DU0000001", {VTI: 10}, {VTI: 12}, set())
    assert problem == [
        "DU0000001 conId 1001: ledger says 10, broker holds 12, and no LEDGER_BREAK was raised"
    ]
    assert inv.positions_explained("DU0000001", {VTI: 10}, {VTI: 12}, {VTI}) == []


def test_orders_within_limits_finds_oversized_orders_too_many_orders_and_orders_while_halted():
    limits = inv.Limits(max_order_notional=2500, max_orders_per_cycle=2)
    small = [order("rc-a-1", qty=10, price=100), order("rc-a-2", qty=24, price=100)]
    assert inv.orders_within_limits(small, limits, halted=False) == []
    big = inv.orders_within_limits([order("rc-a-3", qty=30, price=100)], limits, halted=False)
    assert big == ["order rc-a-3 BUY 30 @ 100 = 3000.00 over maxOrderNotional 2500"]
    many = inv.orders_within_limits([*small, order("rc-a-4", qty=1)], limits, halted=False)
    assert many == ["DU0000001: 3 orders in one cycle over maxOrdersPerCycle 2"]
    assert inv.orders_within_limits(small[:1], limits, halted=True) == [
        "1 order(s) placed while halted: ['rc-a-1']"
    ]


def test_cycles_closed_allows_only_the_killed_cycle_to_stay_open():
    statuses = {1: "ok", 2: "aborted", 3: "running"}
    assert inv.cycles_closed(statuses) == ["cycle 3 not closed (status 'running')"]
    assert inv.cycles_closed(statuses, allow_open=[3]) == []


def test_journal_scanner_reads_place_orders_incrementally_and_waits_for_a_partial_line(tmp_path):
    journal = tmp_path / "sim-journal-1.jsonl"

    def entry(msg_id: int, ref: str) -> str:
        fields = [str(msg_id), "1", "0", "VTI", ref]
        return json.dumps({"dir": "in", "client_id": 31, "msg_id": msg_id, "fields": fields},
                          separators=(",", ":"))

    cut = entry(3, "rc-a-2")
    journal.write_text(entry(3, "rc-a-1") + "\n" + entry(9, "rc-a-9") + "\n" + cut[:20])
    scanner = inv.JournalScanner()
    assert scanner.scan([journal]) == [(31, "rc-a-1")]  # the line being written waits
    with journal.open("a") as more:
        more.write(cut[20:] + "\n")
    assert scanner.scan([journal]) == [(31, "rc-a-1"), (31, "rc-a-2")]
