"""Strict decoder: every defect is a FormatError naming its byte offset.

Work and memory stay proportional to the input: every length and size is checked
against the bytes that remain before anything is allocated, and a desktop resize must
be followed by a keyframe that pays for the new framebuffer with its own bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import (
    BadValue,
    FormatError,
    LengthMismatch,
    OutOfBounds,
    TimeWentBackwards,
    Truncated,
    UnknownRecordType,
)
from .framebuffer import Framebuffer
from .header import (
    COPY_RECT_TYPES,
    HEADER_SIZE,
    KEYFRAME_TYPES,
    MAX_NS,
    PREDICTED_KEYFRAME,
    RECORD_TYPES,
    RECT_TYPES,
    TRAILER_SIZE,
    VERSION_2_TYPES,
    RecordType,
    SegmentHeader,
    Trailer,
    check_trailer_position,
    unpack_header,
    unpack_trailer,
)
from .pixels import from_planar, unpredict_planar, xor_bytes
from .records import (
    MAX_COORDINATE,
    MAX_DIMENSION,
    MAX_POINTER_DIMENSION,
    MAX_REASON_BYTES,
    DesktopResize,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Rect,
    Start,
    Stop,
    TimedRecord,
)
from .varint import decode_uvarint


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the fixed header and trailer say, read without decoding the records."""

    header: SegmentHeader
    trailer: Trailer
    size: int

    @property
    def start_ns(self) -> int:
        return self.header.base_ns

    @property
    def end_ns(self) -> int:
        return self.header.base_ns + self.trailer.duration_ns


@dataclass(frozen=True, slots=True)
class Segment:
    header: SegmentHeader
    records: list[TimedRecord]
    end_ns: int
    size: int

    @property
    def start_ns(self) -> int:
        return self.header.base_ns


def peek_segment(data: bytes | memoryview) -> SegmentInfo:
    """Header and trailer only: cheap enough to index a whole recording for seeking."""
    header = unpack_header(data)
    trailer = unpack_trailer(data)
    if trailer.duration_ns > MAX_NS - header.base_ns:
        raise BadValue(len(data) - TRAILER_SIZE + 1, "segment end exceeds 2^63-1 ns")
    return SegmentInfo(header, trailer, len(data))


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview, pos: int) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uvarint(self) -> int:
        value, self.pos = decode_uvarint(self.data, self.pos)
        return value

    def take(self, n: int, what: str) -> memoryview:
        if n > self.remaining:
            raise Truncated(self.pos, f"{what} needs {n} bytes, only {self.remaining} remain")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def text(self) -> str:
        at = self.pos
        n = self.uvarint()
        if n > MAX_REASON_BYTES:
            raise OutOfBounds(at, f"text length {n} exceeds {MAX_REASON_BYTES}")
        raw = self.take(n, "text")
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise BadValue(at, f"text is not UTF-8: {exc.reason}") from None


def _pixels(raw: memoryview, planar: bool) -> bytes:
    return from_planar(raw) if planar else bytes(raw)


def iter_segment(data: bytes | memoryview) -> Iterator[TimedRecord]:
    """Decode records one by one; a defect raises when the decoder reaches it."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    header = unpack_header(view)
    cur = _Cursor(view, HEADER_SIZE)
    fb: Framebuffer | None = None
    last_ts = header.base_ns
    count = 0
    need_keyframe_at: int | None = header.base_ns  # a keyframe must come next, at this time

    while True:
        at = cur.pos
        if cur.remaining < 1:
            raise Truncated(at, "data ends before the end trailer (segment truncated)")
        kind = view[at]
        cur.pos += 1
        if kind == RecordType.END:
            cur.pos = at
            check_trailer_position(at, len(view))
            trailer = unpack_trailer(view, at)
            if need_keyframe_at is not None:
                raise BadValue(at, "segment ends where a keyframe is required")
            if trailer.record_count != count:
                raise LengthMismatch(at + 9, f"trailer counts {trailer.record_count} records, "
                                             f"segment holds {count}")
            if header.base_ns + trailer.duration_ns < last_ts:
                raise TimeWentBackwards(at + 1, "segment end is before its last record")
            if trailer.duration_ns > MAX_NS - header.base_ns:
                raise BadValue(at + 1, "segment end exceeds 2^63-1 ns")
            return
        if kind not in RECORD_TYPES or (header.version < 2 and kind in VERSION_2_TYPES):
            raise UnknownRecordType(at, f"unknown record type {kind:#04x} in a format "
                                        f"version {header.version} segment")

        ts_at = cur.pos
        ts = header.base_ns + cur.uvarint()
        if ts > MAX_NS:
            raise BadValue(ts_at, "timestamp exceeds 2^63-1 ns")
        if ts < last_ts:
            raise TimeWentBackwards(ts_at, f"time {ts} ns is before the previous record's "
                                           f"{last_ts} ns")
        last_ts = ts
        count += 1

        if need_keyframe_at is not None:
            if kind not in KEYFRAME_TYPES:
                what = "a segment must start with" if fb is None else "a resize must be followed by"
                raise BadValue(at, f"{what} a keyframe, found record type {kind:#04x}")
            if ts != need_keyframe_at:
                raise BadValue(ts_at, "a keyframe after a segment start or resize must share "
                                      "its time")

        if kind in KEYFRAME_TYPES:
            if fb is None:
                # Allocate only once the payload is known to be there.
                n = header.width * header.height * 3
                raw = cur.take(n, f"keyframe {header.width}x{header.height}")
                fb = Framebuffer(header.width, header.height)
            else:
                raw = cur.take(len(fb.pixels), f"keyframe {fb.width}x{fb.height}")
            if kind == PREDICTED_KEYFRAME:
                rgb = unpredict_planar(raw, fb.width)
            else:
                rgb = _pixels(raw, bool(kind & RecordType.PLANAR))
            fb.pixels[:] = rgb
            need_keyframe_at = None
            yield TimedRecord(ts, Keyframe(fb.width, fb.height, rgb))
            continue

        assert fb is not None  # the first record is a keyframe, checked above
        fields_at = cur.pos
        if kind in RECT_TYPES:
            x, y, w, h = cur.uvarint(), cur.uvarint(), cur.uvarint(), cur.uvarint()
            if not fb.contains(x, y, w, h):
                raise OutOfBounds(fields_at, f"rect {w}x{h}+{x}+{y} outside the "
                                         f"{fb.width}x{fb.height} desktop")
            raw = cur.take(w * h * 3, f"rect {w}x{h}")
            rgb = _pixels(raw, bool(kind & RecordType.PLANAR))
            if kind & RecordType.XOR:
                rgb = xor_bytes(rgb, fb.region(x, y, w, h))
            fb.paste(x, y, w, h, rgb)
            yield TimedRecord(ts, Rect(x, y, w, h, rgb))
        elif kind in COPY_RECT_TYPES:
            rect = _copy_rect(cur, fields_at, kind, fb)
            fb.paste(rect.x, rect.y, rect.width, rect.height, rect.rgb)
            yield TimedRecord(ts, rect)
        elif kind == RecordType.RESIZE:
            w, h = cur.uvarint(), cur.uvarint()
            if not (1 <= w <= MAX_DIMENSION and 1 <= h <= MAX_DIMENSION):
                raise OutOfBounds(fields_at, f"desktop size {w}x{h} outside 1..{MAX_DIMENSION}")
            # The keyframe that must follow carries w*h*3 bytes; refuse before allocating.
            if w * h * 3 > cur.remaining:
                raise Truncated(cur.pos, f"resize to {w}x{h} needs a {w * h * 3}-byte keyframe, "
                                         f"only {cur.remaining} bytes remain")
            fb.resize(w, h)
            need_keyframe_at = ts
            yield TimedRecord(ts, DesktopResize(w, h))
        elif kind == RecordType.POINTER:
            x, y = cur.uvarint(), cur.uvarint()
            if x > MAX_COORDINATE or y > MAX_COORDINATE:
                raise OutOfBounds(fields_at, f"pointer position {x},{y} beyond {MAX_COORDINATE}")
            record = Pointer(x, y)
            fb.apply(record)
            yield TimedRecord(ts, record)
        elif kind == RecordType.POINTER_SHAPE:
            shape = _pointer_shape(cur, fields_at)
            fb.apply(shape)
            yield TimedRecord(ts, shape)
        elif kind == RecordType.POINTER_DEFAULT:
            fb.apply(PointerDefault())
            yield TimedRecord(ts, PointerDefault())
        elif kind == RecordType.START:
            yield TimedRecord(ts, Start(cur.text()))
        elif kind == RecordType.STOP:
            yield TimedRecord(ts, Stop(cur.text()))
        elif kind == RecordType.GAP:
            start = cur.uvarint()
            length = cur.uvarint()
            if start > MAX_NS or length > MAX_NS - start:
                raise BadValue(fields_at, "gap range exceeds 2^63-1 ns")
            yield TimedRecord(ts, Gap(start, start + length, cur.text()))
        else:  # pragma: no cover - RECORD_TYPES and this chain list the same types
            raise UnknownRecordType(at, f"unknown record type {kind:#04x}")


def _copy_rect(cur: _Cursor, at: int, kind: int, fb: Framebuffer) -> Rect:
    """A COPY_RECT as the Rect it stands for: the copied rows read from the framebuffer
    before this record, the other rows from the payload (docs/format.md, version 2)."""
    x, y, w, h = cur.uvarint(), cur.uvarint(), cur.uvarint(), cur.uvarint()
    first, rows, sx, sy = cur.uvarint(), cur.uvarint(), cur.uvarint(), cur.uvarint()
    if not fb.contains(x, y, w, h):
        raise OutOfBounds(at, f"rect {w}x{h}+{x}+{y} outside the {fb.width}x{fb.height} desktop")
    if not (rows >= 1 and first + rows <= h):
        raise OutOfBounds(at, f"copied rows {first}..{first + rows - 1} outside the rect's "
                              f"{h} rows (at least one row is copied)")
    if not fb.contains(sx, sy, w, rows):
        raise OutOfBounds(at, f"copy source {w}x{rows}+{sx}+{sy} outside the "
                              f"{fb.width}x{fb.height} desktop")
    rest_rows = h - rows
    if not rest_rows and kind != RecordType.COPY_RECT:
        raise BadValue(at, "layout bits on a copy that carries no pixels")
    row = w * 3
    rest = b""
    if rest_rows:
        raw = cur.take(w * rest_rows * 3, f"rect {w}x{h} less {rows} copied rows")
        rest = _pixels(raw, bool(kind & RecordType.PLANAR))
        if kind & RecordType.XOR:
            rest = xor_bytes(rest, fb.region_except_rows(x, y, w, h, first, rows))
    copied = fb.region(sx, sy, w, rows)
    return Rect(x, y, w, h, rest[:first * row] + copied + rest[first * row:])


def _pointer_shape(cur: _Cursor, at: int) -> PointerShape:
    w, h, hx, hy = cur.uvarint(), cur.uvarint(), cur.uvarint(), cur.uvarint()
    if w > MAX_POINTER_DIMENSION or h > MAX_POINTER_DIMENSION:
        raise OutOfBounds(at, f"pointer shape {w}x{h} larger than {MAX_POINTER_DIMENSION}")
    if (w == 0) != (h == 0):
        raise BadValue(at, f"pointer shape {w}x{h} has one empty dimension")
    if (w and not (hx < w and hy < h)) or (not w and (hx or hy)):
        raise OutOfBounds(at, f"pointer hotspot {hx},{hy} outside the {w}x{h} shape")
    rgba = bytes(cur.take(w * h * 4, f"pointer shape {w}x{h}"))
    return PointerShape(w, h, hx, hy, rgba)


def read_segment(data: bytes | memoryview) -> Segment:
    """Decode and validate a whole segment; raises a FormatError subclass on any defect."""
    header = unpack_header(data)
    records = list(iter_segment(data))
    trailer = unpack_trailer(data)
    return Segment(header, records, header.base_ns + trailer.duration_ns, len(data))


__all__ = ["FormatError", "Segment", "SegmentInfo", "iter_segment", "peek_segment", "read_segment"]
