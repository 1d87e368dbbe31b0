"""Unsigned LEB128 varints: small numbers (coordinates, time deltas) take one or two bytes."""

from __future__ import annotations

from .errors import BadValue, Truncated

# A u64 needs at most 10 groups of 7 bits; anything longer is corrupt, and the
# cap keeps a run of 0x80 bytes from making the decoder loop over the whole input.
MAX_VARINT_BYTES = 10
MAX_U64 = (1 << 64) - 1


def encode_uvarint(value: int) -> bytes:
    if value < 0 or value > MAX_U64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return (value, next position); FormatError names `pos` on failure."""
    result = 0
    shift = 0
    start = pos
    end = len(data)
    for _ in range(MAX_VARINT_BYTES):
        if pos >= end:
            raise Truncated(start, "data ends inside a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result > MAX_U64:
                raise BadValue(start, "varint exceeds 64 bits")
            return result, pos
        shift += 7
    raise BadValue(start, f"varint longer than {MAX_VARINT_BYTES} bytes")
