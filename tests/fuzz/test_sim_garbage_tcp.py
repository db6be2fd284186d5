"""A running simulator that receives garbage over TCP (no API prefix, a bad handshake, a
frame longer than allowed, malformed requests after a good handshake) answers with an error
or drops that client, and keeps serving a real ib_async client afterwards."""

from __future__ import annotations

import asyncio
import socket
import struct

import ib_async
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.profiles import fuzz_settings
from reconciler.sim import run_in_thread
from reconciler.sim.protocol import API_PREFIX, encode_frame

pytestmark = pytest.mark.integration

HANDSHAKE = API_PREFIX + encode_frame(["v157..178"])
START_API = encode_frame(["71", "2", "41", ""])
GARBAGE = {
    "no-api-prefix": b"GET / HTTP/1.1\r\n\r\n",
    "bad-version": API_PREFIX + encode_frame(["v1..2"]),
    "frame-too-large": HANDSHAKE + struct.pack(">I", 0x7FFFFFFF) + b"x" * 100,
    "non-numeric-message-id": HANDSHAKE + START_API + encode_frame(["abc", "1"]),
    "short-requests": HANDSHAKE + START_API + b"".join(
        encode_frame([str(i)]) for i in (1, 2, 3, 4, 6, 7, 9, 20, 62, 63, 74, 76)),
    "huge-algo-count": HANDSHAKE + START_API + encode_frame(
        ["3", "1", *["0"] * 33, *[""] * 47, "Adaptive", "99999999999"]),
}


@pytest.fixture(scope="module")
def sim():
    with run_in_thread(accounts=("DU0000001",)) as running:
        yield running


def send_and_close(sim, data: bytes) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # end of input: the gateway answers, then closes
        try:
            while conn.recv(65536):  # read until the gateway closes the connection
                pass
        except ConnectionResetError:  # dropped without a goodbye: also an answer
            pass


def assert_serves_a_real_client(sim) -> None:
    async def ask():
        ib = ib_async.IB()
        await ib.connectAsync(sim.host, sim.port, clientId=12, timeout=10)
        try:
            return await asyncio.wait_for(ib.reqCurrentTimeAsync(), 10), ib.managedAccounts()
        finally:
            ib.disconnect()

    server_time, accounts = asyncio.run(ask())
    assert server_time is not None and accounts == ["DU0000001"]


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_sim_when_a_client_sends_garbage_then_it_keeps_serving_a_real_client(sim, garbage):
    send_and_close(sim, garbage)
    assert_serves_a_real_client(sim)


@fuzz_settings(scale=0.2)
@given(frames=st.lists(st.lists(st.text(max_size=10), max_size=12), min_size=1, max_size=4))
def test_sim_when_random_frames_follow_a_good_handshake_then_it_keeps_serving(sim, frames):
    send_and_close(sim, HANDSHAKE + START_API + b"".join(encode_frame(f) for f in frames))
    assert sim.call(lambda: True)  # its loop still runs
    assert_serves_a_real_client(sim)
