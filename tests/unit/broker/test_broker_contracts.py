"""Resolution rules and lock data: judging contract-details answers, lock comparison."""

from __future__ import annotations

import ib_async

from reconciler.broker import contracts
from reconciler.broker.errors import LockMismatch, ResolutionError, ResolutionProblem
from reconciler.model.actual import ContractInfo
from reconciler.model.desired import Instrument, LockedInstrument

VTI = ContractInfo(756733, "VTI", "STK", "SMART", "ARCA", "USD", 0.01, 1.0)


def details(con_id=756733, symbol="VTI", exchange="SMART", primary="ARCA", currency="USD"):
    contract = ib_async.Contract(
        conId=con_id,
        symbol=symbol,
        secType="STK",
        exchange=exchange,
        primaryExchange=primary,
        currency=currency,
    )
    return ib_async.ContractDetails(contract=contract, minTick=0.01, longName=f"{symbol} INC")


def test_judge_when_one_match_then_contract_info():
    info = contracts.judge("VTI", "SMART", [details()], [])
    assert info == ContractInfo(
        756733, "VTI", "STK", "SMART", "ARCA", "USD", 0.01, 1.0, long_name="VTI INC"
    )


def test_judge_when_no_match_and_error_200_then_unknown():
    problem = contracts.judge("XYZ", "SMART", [], [(200, "No security definition")])
    assert isinstance(problem, ResolutionProblem) and problem.kind == "unknown"
    assert "error 200" in problem.render()


def test_judge_when_request_failed_otherwise_then_error_with_the_code():
    problem = contracts.judge("XYZ", "SMART", [], [(321, "Error validating request")])
    assert problem.kind == "error" and "321" in problem.message


def test_judge_when_several_matches_then_ambiguous_with_every_candidate():
    answers = [details(1, primary="NASDAQ"), details(2, primary="NYSE", currency="USD")]
    problem = contracts.judge("ABC", "SMART", answers, [])
    assert problem.kind == "ambiguous"
    assert [c.con_id for c in problem.candidates] == [1, 2]
    text = problem.render()
    assert "conId=1" in text and "SMART/NASDAQ" in text and "conId=2" in text


def test_judge_when_several_listings_of_one_con_id_then_not_ambiguous():
    answers = [details(exchange="ARCA"), details(exchange="SMART")]
    info = contracts.judge("VTI", "SMART", answers, [], by_con_id=True)
    assert isinstance(info, ContractInfo) and info.exchange == "SMART"


def locked(**changes):
    base = dict(
        key="VTI",
        con_id=756733,
        symbol="VTI",
        sec_type="STK",
        exchange="SMART",
        primary_exchange="ARCA",
        currency="USD",
        min_tick=0.01,
        size_increment=1.0,
    )
    base.update(changes)
    return LockedInstrument(**base)


def test_lock_differences_when_lock_matches_then_none():
    assert contracts.lock_differences(Instrument("VTI"), locked(), VTI) == []


def test_lock_differences_when_gateway_changed_then_each_field_is_named():
    moved = ContractInfo(756733, "VTI", "STK", "SMART", "NYSE", "USD", 0.005, 1.0)
    problems = contracts.lock_differences(Instrument("VTI"), locked(), moved)
    fields = {p.field: (p.locked, p.gateway) for p in problems}
    assert fields == {"primary_exchange": ("ARCA", "NYSE"), "min_tick": (0.01, 0.005)}
    assert all(p.kind == "lock" for p in problems)


def test_lock_differences_when_desired_pins_other_con_id_then_mismatch():
    problems = contracts.lock_differences(Instrument("VTI", con_id=1), locked(), VTI)
    assert [p.field for p in problems] == ["con_id"]


def test_lock_entries_are_sorted_by_key_and_carry_tick_and_increment():
    bnd = ContractInfo(43645865, "BND", "STK", "SMART", "NASDAQ", "USD", 0.01, 1.0)
    rows = contracts.lock_entries({"VTI": VTI, "BND": bnd})
    assert [r.key for r in rows] == ["BND", "VTI"]
    assert rows[1] == locked()


def test_resolution_error_lists_every_problem_and_says_what_to_do():
    error = ResolutionError(
        [
            ResolutionProblem("XYZ", "unknown", "no security definition"),
            ResolutionProblem("ABC", "ambiguous", "ambiguous: 2 contracts match"),
        ]
    )
    text = str(error)
    assert "2 instrument(s)" in text and "XYZ" in text and "ABC" in text
    assert "primaryExchange" in text


def test_lock_mismatch_is_a_resolution_error_with_mismatches():
    problem = contracts.lock_missing("VTI", 756733)
    error = LockMismatch([problem])
    assert isinstance(error, ResolutionError) and error.mismatches == (problem,)
    assert "no longer known" in str(error)


def test_request_for_instrument_pins_what_the_operator_pinned():
    request = contracts.request_for_instrument(
        ib_async, Instrument("SHOP", primary_exchange="TSE", currency="CAD")
    )
    assert (request.symbol, request.primaryExchange, request.currency, request.exchange) == (
        "SHOP",
        "TSE",
        "CAD",
        "SMART",
    )
    by_id = contracts.request_for_instrument(ib_async, Instrument("VTI", con_id=756733))
    assert by_id.conId == 756733 and by_id.symbol == ""


def test_connectivity_loss_during_a_request_is_reported_even_when_restored():
    from reconciler.broker.connection import Connectivity

    state = Connectivity()
    mark = state.mark()
    assert state.problems_since(mark) == []
    state.lost, state.lost_count = True, 1
    assert any("1100" in p for p in state.problems_since(mark))
    state.lost = False  # 1102 arrived: still reported for a request that spanned the loss
    assert any("1100" in p for p in state.problems_since(mark))
    assert state.problems_since(state.mark()) == []
    state.socket_closed = True
    assert state.problems_since(state.mark()) == ["the connection to the gateway closed"]


LOCKED_VTI = LockedInstrument("VTI", 756733, "VTI", "STK", "SMART", "ARCA", "USD", 0.01, 1.0)


def test_trusted_lock_entry_is_the_locked_contract_without_a_request():
    assert contracts.trusted_lock_entry(Instrument("VTI"), LOCKED_VTI) == VTI


def test_trusted_lock_entry_when_the_desired_state_names_another_currency_then_a_lock_problem():
    [problem] = contracts.trusted_lock_entry(Instrument("VTI", currency="EUR"), LOCKED_VTI)
    assert (problem.kind, problem.field) == ("lock", "currency")


def test_held_lock_problems_when_a_held_con_id_is_another_symbol_then_names_the_field():
    from reconciler.model.actual import Position

    held = [Position("DU0000001", 756733, "VTIX", "STK", "USD", 3, 200.0)]
    [problem] = contracts.held_lock_problems({"VTI": LOCKED_VTI}, held)
    assert (problem.key, problem.field, problem.locked, problem.gateway) == (
        "VTI", "symbol", "VTI", "VTIX"
    )


def test_held_lock_problems_when_positions_agree_or_are_not_locked_then_none():
    from reconciler.model.actual import Position

    held = [
        Position("DU0000001", 756733, "VTI", "STK", "USD", 3, 200.0),
        Position("DU0000001", 999, "BND", "STK", "USD", 3, 70.0),
    ]
    assert contracts.held_lock_problems({"VTI": LOCKED_VTI}, held) == []
