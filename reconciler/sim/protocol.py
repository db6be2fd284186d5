"""TWS API socket framing for the simulator: handshake parsing, frames, field formatting.

Responsible for turning bytes into field lists and back, exactly as IB Gateway does: the client
opens with the raw prefix ``API\\0`` and one framed version string; every later message in both
directions is a 4-byte big-endian length followed by UTF-8 fields, each terminated by NUL
(including the last). Must not know what any message means (that is ``requests``,
``messages`` and ``gateway``) and must not import an IB client library.
"""

from __future__ import annotations

import math
import re
import struct

API_PREFIX = b"API\0"
SERVER_MAX_VERSION = 178
SERVER_MIN_VERSION = 157
_HEADER = struct.Struct(">I")
_VERSION_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$")
MAX_FRAME = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid TWS API conversation."""


def encode_frame(fields: list[str]) -> bytes:
    """One length-prefixed message; every field NUL-terminated, the last one too."""
    payload = "".join(f"{field}\0" for field in fields).encode()
    return _HEADER.pack(len(payload)) + payload


def frame_payload(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def decode_fields(payload: bytes) -> list[str]:
    """Split a message body into fields, dropping the empty tail after the last NUL."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(text: str) -> tuple[int, int, str]:
    """Parse the handshake's ``v157..178 +PACEAPI`` into (min, max, options)."""
    match = _VERSION_RANGE.match(text.strip())
    if not match:
        raise ProtocolError(f"bad handshake version string {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if high < low:
        raise ProtocolError(f"bad handshake version range {text!r}")
    return low, high, (match.group(3) or "").strip()


def negotiate_version(client_min: int, client_max: int) -> int:
    """The server answers min(client max, its own max); below our floor is refused."""
    version = min(client_max, SERVER_MAX_VERSION)
    if version < max(client_min, SERVER_MIN_VERSION):
        raise ProtocolError(
            f"no common protocol version: client {client_min}..{client_max}, "
            f"server {SERVER_MIN_VERSION}..{SERVER_MAX_VERSION}"
        )
    return version


class FrameReader:
    """Incremental decoder: feed bytes, get complete messages (the handshake first)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.handshake_done = False

    def feed(self, data: bytes) -> list[list[str]]:
        self._buffer += data
        messages: list[list[str]] = []
        if not self.handshake_done:
            if len(self._buffer) < len(API_PREFIX):
                return messages
            if bytes(self._buffer[: len(API_PREFIX)]) != API_PREFIX:
                raise ProtocolError("connection did not start with API\\0")
            del self._buffer[: len(API_PREFIX)]
            self.handshake_done = True
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes is too large")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            messages.append(decode_fields(payload))
        return messages


def fmt(value: object) -> str:
    """Format one outgoing field the way IB does: ints plain, floats shortest, bools 0/1."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return ""
        if value == int(value) and abs(value) < 1e15:
            return str(int(value)) if abs(value) >= 1e-9 else "0"
        return repr(round(value, 8))
    return str(value)


def fmt_price(value: float | None) -> str:
    """Prices and amounts: shortest decimal text, never exponent notation for normal values."""
    if value is None:
        return ""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def to_int(text: str, default: int = 0) -> int:
    """An integer field; text that is no finite number is the client's mistake, reported as
    a ProtocolError (the gateway answers it with error 320 instead of failing)."""
    if text in ("", None):
        return default
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise ProtocolError(f"not a finite number: {text[:40]!r}")
    return int(value)


def to_float(text: str, default: float | None = None) -> float | None:
    if text in ("", None):
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    # The clients send UNSET_DOUBLE as "" but other clients send the literal max double;
    # NaN and infinities are no price or quantity either.
    if value >= 1.7e308 or not math.isfinite(value):
        return default
    return value


def to_bool(text: str) -> bool:
    return text not in ("", "0", "false", "False")
