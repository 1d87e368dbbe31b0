"""Fixed-size segment header and trailer, and the record type bytes (format versions 1 and 2)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import BadMagic, BadValue, LengthMismatch, OutOfBounds, Truncated, UnsupportedVersion
from .records import MAX_DIMENSION

MAGIC = b"LUCIDSEG"
TRAILER_MAGIC = b"LUCIDEND"
# What the writer writes. Version 2 adds COPY_RECT and the predicted keyframe; everything
# else is as in version 1.
VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})

# magic, version, flags, seq, width, height, base_ns, session_start_unix_ns
_HEADER = struct.Struct("<8sBBIHHQq")
HEADER_SIZE = _HEADER.size  # 34
# END type byte, duration_ns, record_count, trailer magic: fixed so it can be read from the end.
_TRAILER = struct.Struct("<BQI8s")
TRAILER_SIZE = _TRAILER.size  # 21

MAX_NS = (1 << 63) - 1


class RecordType:
    """One byte per record; the low bits of KEYFRAME and RECT say how the pixels are laid out."""

    KEYFRAME = 0x10  # | PLANAR
    RECT = 0x20  # | PLANAR | XOR
    COPY_RECT = 0x24  # | PLANAR | XOR, version 2 on
    RESIZE = 0x30
    POINTER = 0x40
    POINTER_SHAPE = 0x41
    POINTER_DEFAULT = 0x42
    START = 0x50
    STOP = 0x51
    GAP = 0x52
    END = 0xFF

    PLANAR = 0x01
    XOR = 0x02
    # On a keyframe (there is nothing to XOR against), with PLANAR: pixels.predict_planar.
    PREDICTED = 0x02


PREDICTED_KEYFRAME = RecordType.KEYFRAME | RecordType.PLANAR | RecordType.PREDICTED
KEYFRAME_TYPES = frozenset({RecordType.KEYFRAME, RecordType.KEYFRAME | RecordType.PLANAR,
                            PREDICTED_KEYFRAME})
RECT_TYPES = frozenset(RecordType.RECT | bits for bits in range(4))
COPY_RECT_TYPES = frozenset(RecordType.COPY_RECT | bits for bits in range(4))
# Types only version 2 has: a version 1 segment holding one is refused.
VERSION_2_TYPES = COPY_RECT_TYPES | {PREDICTED_KEYFRAME}
RECORD_TYPES = KEYFRAME_TYPES | RECT_TYPES | COPY_RECT_TYPES | {
    RecordType.RESIZE, RecordType.POINTER, RecordType.POINTER_SHAPE, RecordType.POINTER_DEFAULT,
    RecordType.START, RecordType.STOP, RecordType.GAP,
}


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    seq: int
    width: int
    height: int
    base_ns: int  # session-relative monotonic ns of the segment start
    session_start_unix_ns: int  # wall clock at session start; base_ns counts from it
    version: int = VERSION

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, self.version, 0, self.seq, self.width, self.height,
                            self.base_ns, self.session_start_unix_ns)


@dataclass(frozen=True, slots=True)
class Trailer:
    duration_ns: int
    record_count: int

    def pack(self) -> bytes:
        return _TRAILER.pack(RecordType.END, self.duration_ns, self.record_count, TRAILER_MAGIC)


def unpack_header(data: bytes | memoryview) -> SegmentHeader:
    if len(data) < len(MAGIC) or bytes(data[: len(MAGIC)]) != MAGIC:
        if len(data) < len(MAGIC) and bytes(data) == MAGIC[: len(data)]:
            raise Truncated(len(data), "data ends inside the segment magic")
        raise BadMagic(0, "not a Lucid segment (bad magic)")
    if len(data) < HEADER_SIZE:
        raise Truncated(len(data), f"header needs {HEADER_SIZE} bytes, data has {len(data)}")
    _, version, flags, seq, width, height, base_ns, start_unix = _HEADER.unpack_from(data, 0)
    if version not in READABLE_VERSIONS:
        raise UnsupportedVersion(8, f"format version {version} (this decoder reads "
                                    f"{', '.join(map(str, sorted(READABLE_VERSIONS)))})")
    if flags:
        raise BadValue(9, f"reserved header flags set: {flags:#04x}")
    if not 1 <= width <= MAX_DIMENSION:
        raise OutOfBounds(14, f"desktop width {width} outside 1..{MAX_DIMENSION}")
    if not 1 <= height <= MAX_DIMENSION:
        raise OutOfBounds(16, f"desktop height {height} outside 1..{MAX_DIMENSION}")
    if base_ns > MAX_NS:
        raise BadValue(18, f"base time {base_ns} exceeds 2^63-1 ns")
    return SegmentHeader(seq, width, height, base_ns, start_unix, version)


def unpack_trailer(data: bytes | memoryview, offset: int | None = None) -> Trailer:
    """Read the trailer at `offset`, or from the last TRAILER_SIZE bytes (no record decoding)."""
    at_end = offset is None
    if offset is None:
        offset = len(data) - TRAILER_SIZE
        if offset < HEADER_SIZE:
            raise Truncated(len(data), "segment too short to hold header and trailer")
    kind, duration, count, magic = _TRAILER.unpack_from(data, offset)
    if at_end and (kind != RecordType.END or magic != TRAILER_MAGIC):
        raise Truncated(len(data), "no end trailer: segment truncated or not finished")
    if magic != TRAILER_MAGIC:
        raise BadValue(offset + 13, "bad end trailer magic")
    if duration > MAX_NS:
        raise BadValue(offset + 1, f"duration {duration} exceeds 2^63-1 ns")
    return Trailer(duration, count)


def check_trailer_position(offset: int, total: int) -> None:
    if offset + TRAILER_SIZE > total:
        raise Truncated(total, f"data ends inside the end trailer that starts at byte {offset}")
    if offset + TRAILER_SIZE < total:
        raise LengthMismatch(offset + TRAILER_SIZE,
                             f"{total - offset - TRAILER_SIZE} bytes follow the end trailer")
