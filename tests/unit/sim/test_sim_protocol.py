"""Framing and handshake of the TWS socket protocol."""

from __future__ import annotations

import struct

import pytest

from reconciler.sim.protocol import (
    API_PREFIX,
    FrameReader,
    ProtocolError,
    encode_frame,
    fmt,
    fmt_price,
    negotiate_version,
    parse_version_range,
    to_float,
    to_int,
)


def test_encode_frame_terminates_every_field_including_the_last():
    frame = encode_frame(["9", "1", "42"])
    assert frame == struct.pack(">I", 7) + b"9\x001\x0042\x00"


def test_frame_reader_when_bytes_arrive_in_pieces_then_whole_messages_come_out():
    hello = API_PREFIX + struct.pack(">I", 9) + b"v157..178"
    stream = hello + encode_frame(["71", "2", "5", ""]) + encode_frame(["49", "1"])
    reader = FrameReader()
    messages = []
    for i in range(len(stream)):
        messages += reader.feed(stream[i : i + 1])
    assert messages == [["v157..178"], ["71", "2", "5", ""], ["49", "1"]]


def test_frame_reader_when_prefix_is_not_api_then_protocol_error():
    with pytest.raises(ProtocolError):
        FrameReader().feed(b"GET / HTTP/1.1\r\n")


def test_version_range_parses_min_max_and_options():
    assert parse_version_range("v157..176") == (157, 176, "")
    assert parse_version_range("v100..178 +PACEAPI") == (100, 178, "+PACEAPI")
    with pytest.raises(ProtocolError):
        parse_version_range("hello")


@pytest.mark.parametrize(
    ("low", "high", "expected"), [(157, 176, 176), (157, 178, 178), (157, 200, 178)]
)
def test_negotiated_version_is_min_of_client_max_and_178(low, high, expected):
    assert negotiate_version(low, high) == expected


def test_negotiation_when_client_is_too_old_then_refused():
    with pytest.raises(ProtocolError):
        negotiate_version(100, 150)


def test_field_formatting_matches_what_clients_parse():
    assert fmt(True) == "1" and fmt(False) == "0"
    assert fmt(100.0) == "100" and fmt(0.5) == "0.5" and fmt(None) == ""
    assert fmt_price(290.01) == "290.01" and fmt_price(1e-9) == "0" and fmt_price(73.0) == "73"


@pytest.mark.parametrize("text", ["abc", "1e400", "nan", "inf", "\u00b2"])
def test_to_int_when_the_field_is_no_finite_number_then_a_protocol_error(text):
    with pytest.raises(ProtocolError, match="number"):
        to_int(text)


def test_to_int_reads_integers_and_integral_floats():
    assert (to_int("42"), to_int("-3"), to_int("7.0"), to_int("", 5)) == (42, -3, 7, 5)


@pytest.mark.parametrize("text", ["nan", "-inf", "inf", "1.7976931348623157E308", "abc"])
def test_to_float_when_the_field_is_no_finite_number_then_the_default(text):
    assert to_float(text, 1.5) == 1.5
