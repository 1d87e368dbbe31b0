"""A strict decoder: every kind of damage is a FormatError that names the byte offset."""

from __future__ import annotations

import struct
import time

import pytest

from lucid_recorder.format import (
    HEADER_SIZE,
    BadMagic,
    BadValue,
    DesktopResize,
    FormatError,
    Gap,
    LengthMismatch,
    OutOfBounds,
    Pointer,
    PointerShape,
    RecordType,
    Rect,
    SegmentWriter,
    Start,
    Stop,
    TimeWentBackwards,
    Truncated,
    UnknownRecordType,
    UnsupportedVersion,
    peek_segment,
    read_segment,
)
from lucid_recorder.format.header import SegmentHeader, Trailer
from lucid_recorder.format.varint import encode_uvarint as uv

W, H = 2, 2


def header(width: int = W, height: int = H, base: int = 0) -> bytes:
    return SegmentHeader(0, width, height, base, 0).pack()


def keyframe(ts: int = 0, width: int = W, height: int = H) -> bytes:
    return bytes([RecordType.KEYFRAME]) + uv(ts) + bytes(width * height * 3)


def rec(kind: int, ts: int, *fields: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + uv(ts) + b"".join(uv(f) for f in fields) + payload


def start(ts: int) -> bytes:
    return rec(RecordType.START, ts, 0)  # empty detail text


def trailer(duration: int, count: int) -> bytes:
    return Trailer(duration, count).pack()


def segment(*records: bytes, duration: int = 100, count: int | None = None,
            head: bytes | None = None) -> bytes:
    body = b"".join(records)
    n = len(records) if count is None else count
    return (header() if head is None else head) + body + trailer(duration, n)


def valid() -> bytes:
    writer = SegmentWriter(8, 6, 1000, keyframe_interval_ns=50, seq=3)
    writer.add(1000, Start())
    writer.add(1010, Rect(1, 1, 3, 2, bytes(range(18))))
    writer.add(1020, Pointer(4, 4))
    writer.add(1030, PointerShape(2, 2, 1, 1, bytes(range(16))))
    writer.add(1040, Gap(900, 1040, "lost"))
    writer.add(1060, Rect(0, 0, 8, 6, bytes(range(144))))
    writer.add(1070, DesktopResize(4, 4))
    writer.add(1080, Stop("bye"))
    return writer.finish(1100)


def test_valid_sample_decodes() -> None:
    assert read_segment(valid()).end_ns == 1100


K = HEADER_SIZE + len(keyframe())  # offset of the record after the first keyframe

CORRUPTIONS = [
    # (name, data, error class, offset, message fragment)
    ("empty", b"", Truncated, 0, "magic"),
    ("bad magic", b"LUCIDSEX" + header()[8:] + keyframe() + trailer(0, 1), BadMagic, 0, "magic"),
    ("not ours", b"\x89PNG\r\n\x1a\n" + bytes(40), BadMagic, 0, "magic"),
    ("header cut", header()[:20], Truncated, 20, "header"),
    ("version 3", header()[:8] + b"\x03" + header()[9:] + keyframe() + trailer(0, 1),
     UnsupportedVersion, 8, "version 3"),
    ("copy in a version 1 segment",
     segment(keyframe(), rec(0x24, 1, 0, 0, 2, 2, 0, 2, 0, 0), head=header()[:8] + b"\x01"
             + header()[9:]), UnknownRecordType, K, "0x24 in a format version 1"),
    ("predicted keyframe in a version 1 segment",
     segment(bytes([0x13]) + uv(0) + bytes(12), head=header()[:8] + b"\x01" + header()[9:]),
     UnknownRecordType, HEADER_SIZE, "0x13 in a format version 1"),
    ("predicted keyframe cut", header() + bytes([0x13]) + uv(0) + bytes(11), Truncated,
     HEADER_SIZE + 2, "keyframe 2x2 needs 12 bytes"),
    ("copy of no rows", segment(keyframe(), rec(0x24, 1, 0, 0, 2, 1, 0, 0, 0, 0)),
     OutOfBounds, K + 2, "copied rows"),
    ("copy rows past the rect", segment(keyframe(), rec(0x24, 1, 0, 0, 2, 1, 0, 2, 0, 0)),
     OutOfBounds, K + 2, "copied rows"),
    ("copy source outside", segment(keyframe(), rec(0x24, 1, 0, 0, 2, 1, 0, 1, 1, 0)),
     OutOfBounds, K + 2, "copy source 2x1+1+0 outside"),
    ("copy rect outside", segment(keyframe(), rec(0x24, 1, 1, 0, 2, 1, 0, 1, 0, 0)),
     OutOfBounds, K + 2, "outside the 2x2"),
    ("copy with layout bits and no pixels",
     segment(keyframe(), rec(0x25, 1, 0, 0, 2, 1, 0, 1, 0, 1)), BadValue, K + 2, "layout bits"),
    ("copy pixels cut", header() + keyframe() + rec(0x24, 1, 0, 0, 2, 2, 0, 1, 0, 0,
                                                    payload=bytes(5)),
     Truncated, K + 10, "needs 6 bytes"),
    ("reserved flags", header()[:9] + b"\x01" + header()[10:] + keyframe() + trailer(0, 1),
     BadValue, 9, "flags"),
    ("zero width", segment(keyframe(width=0), head=header(width=0)), OutOfBounds, 14, "width"),
    ("huge height", segment(keyframe(), head=header(height=9000)), OutOfBounds, 16, "height"),
    ("no keyframe first", segment(rec(RecordType.START, 0)), BadValue, HEADER_SIZE,
     "must start with a keyframe"),
    ("first keyframe late", segment(keyframe(ts=5)), BadValue, HEADER_SIZE + 1, "share its time"),
    ("unknown record type", segment(keyframe(), rec(0x99, 1)), UnknownRecordType, K, "0x99"),
    ("unknown type first", segment(rec(0x01, 0)), UnknownRecordType, HEADER_SIZE, "0x01"),
    ("rect out of bounds", segment(keyframe(), rec(0x20, 1, 1, 1, 2, 1, payload=bytes(6))),
     OutOfBounds, K + 2, "outside"),
    ("rect empty", segment(keyframe(), rec(0x20, 1, 0, 0, 0, 1)), OutOfBounds, K + 2, "outside"),
    ("rect pixels cut", header() + keyframe() + rec(0x20, 1, 0, 0, 2, 2, payload=bytes(5)),
     Truncated, K + 6, "rect 2x2 needs 12 bytes"),
    ("time backwards", segment(keyframe(), start(10), start(5)),
     TimeWentBackwards, K + 4, "before the previous"),
    ("end before last record", segment(keyframe(), start(10), duration=9),
     TimeWentBackwards, K + 3 + 1, "end is before"),
    ("record count wrong", segment(keyframe(), start(1), count=3),
     LengthMismatch, K + 3 + 9, "counts 3 records"),
    ("bytes after trailer", segment(keyframe()) + b"\x00", LengthMismatch,
     HEADER_SIZE + len(keyframe()) + 21, "follow the end trailer"),
    ("trailer missing", header() + keyframe(), Truncated, HEADER_SIZE + len(keyframe()),
     "before the end trailer"),
    ("trailer cut", (header() + keyframe() + trailer(0, 1))[:-3], Truncated,
     HEADER_SIZE + len(keyframe()) + 18, "inside the end trailer"),
    ("trailer magic", segment(keyframe())[:-1] + b"X", BadValue,
     HEADER_SIZE + len(keyframe()) + 13, "trailer magic"),
    ("overlong varint", header() + keyframe() + bytes([RecordType.START]) + b"\x80" * 11,
     BadValue, K + 1, "longer than 10 bytes"),
    ("resize without keyframe", segment(keyframe(), rec(RecordType.RESIZE, 1, 1, 1),
                                        rec(RecordType.START, 1)),
     BadValue, K + 4, "resize must be followed by a keyframe"),
    ("resize to huge, no pixels", segment(keyframe(), rec(RecordType.RESIZE, 1, 8192, 8192)),
     Truncated, K + 6, "needs a 201326592-byte keyframe"),
    ("resize to zero", segment(keyframe(), rec(RecordType.RESIZE, 1, 0, 5)), OutOfBounds, K + 2,
     "outside"),
    ("pointer off the map", segment(keyframe(), rec(RecordType.POINTER, 1, 70000, 1)),
     OutOfBounds, K + 2, "beyond"),
    ("pointer shape huge", segment(keyframe(), rec(RecordType.POINTER_SHAPE, 1, 4096, 4096, 0, 0)),
     OutOfBounds, K + 2, "larger"),
    ("pointer hotspot outside", segment(keyframe(), rec(RecordType.POINTER_SHAPE, 1, 1, 1, 1, 0,
                                                        payload=bytes(4))),
     OutOfBounds, K + 2, "hotspot"),
    ("pointer half empty", segment(keyframe(), rec(RecordType.POINTER_SHAPE, 1, 0, 3, 0, 0)),
     BadValue, K + 2, "empty dimension"),
    ("stop text not utf-8", segment(keyframe(), rec(RecordType.STOP, 1, 2, payload=b"\xff\xfe")),
     BadValue, K + 2, "UTF-8"),
    ("stop text too long", segment(keyframe(), rec(RecordType.STOP, 1, 5000)), OutOfBounds, K + 2,
     "exceeds 1024"),
    ("stop text cut", header() + keyframe() + rec(RecordType.STOP, 1, 10, payload=b"abc"),
     Truncated, K + 3, "text needs 10 bytes"),
    ("gap overflows", segment(keyframe(), rec(RecordType.GAP, 1, 2**63 - 1, 5, 0)), BadValue,
     K + 2, "exceeds"),
    ("timestamp overflows", segment(keyframe(), rec(RecordType.START, 2**63)), BadValue, K + 1,
     "exceeds"),
]


@pytest.mark.parametrize(("name", "data", "error", "offset", "fragment"), CORRUPTIONS,
                         ids=[c[0] for c in CORRUPTIONS])
def test_corruption_is_reported_with_offset(name: str, data: bytes, error: type[FormatError],
                                            offset: int, fragment: str) -> None:
    with pytest.raises(error) as caught:
        read_segment(data)
    assert caught.value.offset == offset, str(caught.value)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"at byte {offset}: ")


def test_every_truncation_is_an_error() -> None:
    data = valid()
    for n in range(len(data)):
        with pytest.raises(FormatError) as caught:
            read_segment(data[:n])
        assert 0 <= caught.value.offset <= n


def test_every_single_byte_flip_is_an_error_or_a_valid_segment() -> None:
    data = valid()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0xA5
        try:
            read_segment(bytes(damaged))
        except FormatError as exc:
            assert 0 <= exc.offset <= len(damaged)


def test_malicious_sizes_are_refused_fast() -> None:
    # A 50-byte file claiming an 8192x8192 desktop must not make the decoder allocate 192 MiB.
    started = time.perf_counter()
    with pytest.raises(Truncated):
        read_segment(header(8192, 8192) + bytes([RecordType.KEYFRAME, 0]) + trailer(0, 1))
    many_resizes = segment(keyframe(), *[rec(RecordType.RESIZE, 1, 8192, 8192)] * 100)
    with pytest.raises(Truncated):
        read_segment(many_resizes)
    assert time.perf_counter() - started < 1.0


def test_peek_reads_header_and_trailer_only() -> None:
    data = valid()
    info = peek_segment(data)
    assert (info.header.seq, info.start_ns, info.end_ns, info.trailer.record_count) == (
        3, 1000, 1100, len(read_segment(data).records))
    with pytest.raises(Truncated, match="no end trailer"):
        peek_segment(data[:-1])
    with pytest.raises(BadMagic):
        peek_segment(b"x" * 100)


def test_trailer_fields_are_little_endian() -> None:
    data = valid()
    duration, count = struct.unpack_from("<QI", data, len(data) - 20)
    assert duration == 100
    assert count == len(read_segment(data).records)
