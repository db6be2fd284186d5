"""Fuzzing the simulator's request side: framing (`protocol.FrameReader`), the handshake,
the request parsers (`requests.py`) and the whole path from bytes through the dispatcher to
every handler. Malformed input is answered with an error or the client is dropped, never an
uncaught exception (which would kill the connection with a traceback, or worse, the
gateway) and never a hang. In process: a gateway on its own event loop, sessions fed bytes
through a stand-in transport; no TCP (the one TCP test is tests/fuzz/test_sim_garbage_tcp.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.profiles import fuzz_settings
from reconciler.sim import SimGateway
from reconciler.sim import messages as m
from reconciler.sim.gateway.session import Session
from reconciler.sim.protocol import (
    API_PREFIX,
    FrameReader,
    ProtocolError,
    encode_frame,
    parse_version_range,
    to_float,
    to_int,
)
from reconciler.sim.requests import (
    contract12,
    parse_exec_filter,
    parse_historical,
    parse_market_data,
    parse_place_order,
)

REQUEST_IDS = sorted({v for k, v in vars(m).items() if k.startswith("IN_") and isinstance(v, int)})
# Field texts that parsers meet in the wild or that break naive int()/float() parsing.
FIELD = st.text(max_size=12) | st.sampled_from(
    ["", "0", "1", "-1", "2", "99999999999999999999", "1e400", "-1e400", "inf", "nan", "1.5",
     "1.7976931348623157E308", "STK", "BAG", "SMART", "USD", "AAPL", "VTI", "BUY", "SELL",
     "LMT", "MKT", "DAY", "DU0000001", "rc-fuzz-1", "\x00", "\u2028", "0x10"]
)
FIELDS = st.lists(FIELD, max_size=60)


# ------------------------------------------------------------------ pure parsers


def only_protocol_errors(parse, *args) -> None:
    try:
        parse(*args)
    except ProtocolError as exc:
        assert str(exc)


@fuzz_settings()
@given(text=FIELD)
@example(text="1e400")
@example(text="nan")
@example(text="abc")
def test_number_fields_when_malformed_then_a_protocol_error_or_a_number(text):
    only_protocol_errors(to_int, text)
    only_protocol_errors(to_float, text)


@fuzz_settings()
@given(text=st.text(max_size=30))
@example(text="v999999999999999999999..1")
def test_handshake_version_when_malformed_then_a_protocol_error(text):
    only_protocol_errors(parse_version_range, text)


@fuzz_settings()
@given(fields=FIELDS, version=st.integers(100, 200))
# An algo order announcing 10^11 parameters once made the parser loop on padding for ever.
@example(fields=["3", "1", *["0"] * 33, *[""] * 47, "Adaptive", "99999999999"], version=178)
# A message ending right after the order's first 35 fields once raised IndexError.
@example(fields=["3", "1", *["0"] * 33], version=178)
def test_place_order_parser_when_fields_are_malformed_then_a_protocol_error_or_a_request(
    fields, version
):
    only_protocol_errors(parse_place_order, fields, version)


@fuzz_settings()
@given(fields=FIELDS)
@example(fields=["1", "11", "1", "0", "X", "BAG", *[""] * 9, "99999999999"])
def test_other_request_parsers_when_fields_are_malformed_then_a_protocol_error_or_a_request(
    fields,
):
    for parse in (parse_exec_filter, parse_market_data, parse_historical):
        only_protocol_errors(parse, fields)
    only_protocol_errors(contract12, fields, 2)


@fuzz_settings()
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
@example(chunks=[API_PREFIX + b"\xff\xff\xff\xff"])
def test_frame_reader_when_bytes_are_arbitrary_then_messages_or_a_protocol_error(chunks):
    reader = FrameReader()
    try:
        for chunk in chunks:
            for fields in reader.feed(chunk):
                assert isinstance(fields, list)
    except ProtocolError as exc:
        assert str(exc)


# ------------------------------------------------------------------ bytes through the gateway


class Wire:
    """Stands in for the asyncio transport under a Session: keeps what was written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


@pytest.fixture(scope="module")
def running():
    """A started gateway (listening, never connected to) on a loop of this module."""
    loop = asyncio.new_event_loop()
    gateway = SimGateway(accounts=("DU0000001",), port=0)
    loop.run_until_complete(gateway.start())
    yield loop, gateway
    loop.run_until_complete(gateway.stop())
    loop.close()


def connected(gateway, client_id: int) -> tuple[Session, Wire]:
    session, wire = Session(gateway), Wire()
    session.connection_made(wire)
    session.data_received(API_PREFIX + encode_frame(["v157..178"]))
    session.data_received(encode_frame([str(m.IN_START_API), "2", str(client_id), ""]))
    assert session.api_started, "the handshake failed"
    return session, wire


def still_serving(loop, gateway) -> None:
    """A new client is answered: the gateway survived whatever came before."""

    async def ask() -> bytes:
        session, wire = connected(gateway, 999)
        before = len(wire.written)
        session.data_received(encode_frame([str(m.IN_REQ_CURRENT_TIME), "1"]))
        await asyncio.sleep(0)  # let the session's scheduled flush run
        answer = bytes(wire.written[before:])
        session.connection_lost(None)
        return answer

    assert loop.run_until_complete(ask()), "the gateway no longer answers a new client"


def feed(loop, gateway, frames: list[bytes]) -> None:
    async def run() -> None:
        session, _wire = connected(gateway, 7)
        try:
            for frame in frames:
                if session.closed:
                    break  # dropped: the other acceptable answer
                session.data_received(frame)
            await asyncio.sleep(0)
        finally:
            if not session.closed:
                session.connection_lost(None)

    loop.run_until_complete(run())


@fuzz_settings()
@given(messages=st.lists(st.tuples(st.sampled_from(REQUEST_IDS) | FIELD, FIELDS), max_size=6))
@example(messages=[("abc", [])])
# A superscript digit passes str.isdigit() but not int(): the journal once raised on it.
@example(messages=[("\u00b2", [])])
@example(messages=[("1e400", [])])
@example(messages=[(str(m.IN_START_API), ["2", "x"])])
@example(messages=[(str(m.IN_PLACE_ORDER), ["1", *["0"] * 33, *[""] * 47, "Vwap", "1e12"])])
def test_gateway_when_requests_are_malformed_then_it_answers_or_drops_and_keeps_serving(
    running, messages
):
    loop, gateway = running
    feed(loop, gateway, [encode_frame([str(msg_id), *fields]) for msg_id, fields in messages])
    still_serving(loop, gateway)


@fuzz_settings()
@given(data=st.binary(max_size=200))
@example(data=b"\x00\x00\x00\x03a\x00b")
@example(data=b"\x7f\xff\xff\xff")
def test_gateway_when_frames_are_garbage_bytes_then_it_answers_or_drops_and_keeps_serving(
    running, data
):
    loop, gateway = running
    feed(loop, gateway, [data])
    still_serving(loop, gateway)
