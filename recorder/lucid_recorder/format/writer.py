"""SegmentWriter: turns timestamped records into one self-contained segment."""

from __future__ import annotations

from .. import native
from .encoding import Layout, LayoutPolicy, adaptive_layout, encode_pixels
from .framebuffer import Framebuffer, check_size
from .header import (
    MAX_NS,
    PREDICTED_KEYFRAME,
    READABLE_VERSIONS,
    VERSION,
    RecordType,
    SegmentHeader,
    Trailer,
)
from .motion import Copy, find_copy, remember
from .pixels import predict_planar
from .records import (
    MAX_COORDINATE,
    MAX_POINTER_DIMENSION,
    MAX_REASON_BYTES,
    DesktopResize,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Record,
    Rect,
    Start,
    Stop,
)
from .varint import encode_uvarint as uv


def _text(reason: str) -> bytes:
    raw = reason.encode("utf-8")
    if len(raw) > MAX_REASON_BYTES:
        raise ValueError(f"reason longer than {MAX_REASON_BYTES} bytes")
    return uv(len(raw)) + raw


class SegmentWriter:
    """Encode one segment. Bad input raises ValueError: that is a bug upstream, not bad data.

    The writer keeps its own framebuffer (a copy of `framebuffer` when given, so the next
    segment can continue from this one's `.framebuffer`), emits a keyframe at `base_ns`
    and then whenever `keyframe_interval_ns` has passed since the last one.
    """

    def __init__(
        self,
        width: int,
        height: int,
        base_ns: int,
        keyframe_interval_ns: int | None = None,
        framebuffer: Framebuffer | None = None,
        *,
        seq: int = 0,
        session_start_unix_ns: int = 0,
        layout_policy: LayoutPolicy = adaptive_layout,
        version: int = VERSION,
    ) -> None:
        check_size(width, height)
        if version not in READABLE_VERSIONS:
            raise ValueError(f"format version {version}: the writer writes "
                             f"{', '.join(map(str, sorted(READABLE_VERSIONS)))}")
        if not 0 <= base_ns <= MAX_NS:
            raise ValueError(f"base_ns {base_ns} out of range")
        if not 0 <= seq <= 0xFFFFFFFF:
            raise ValueError(f"seq {seq} out of range")
        if keyframe_interval_ns is not None and keyframe_interval_ns <= 0:
            raise ValueError("keyframe_interval_ns must be positive (None: segment start only)")
        if framebuffer is None:
            self._fb = Framebuffer(width, height)
        elif (framebuffer.width, framebuffer.height) != (width, height):
            raise ValueError(f"framebuffer is {framebuffer.width}x{framebuffer.height}, "
                             f"segment is {width}x{height}")
        else:
            self._fb = framebuffer.copy()
        self.header = SegmentHeader(seq, width, height, base_ns, session_start_unix_ns, version)
        # Offsets that matched recently (motion.find_copy); version 1 has no copies.
        self._hints: list[tuple[int, int]] | None = [] if version >= 2 else None
        self._interval = keyframe_interval_ns
        self._policy = layout_policy
        self._out = bytearray(self.header.pack())
        self._last_ts = base_ns
        self._last_keyframe = base_ns
        self._count = 0
        self._finished = False
        self._keyframe(base_ns)
        self._restate_pointer(base_ns)
        self._opening_size = len(self._out)

    # -- state ---------------------------------------------------------------

    @property
    def framebuffer(self) -> Framebuffer:
        """The live framebuffer after the records so far (copy it before changing it)."""
        return self._fb

    @property
    def size(self) -> int:
        """Bytes written so far, without the trailer."""
        return len(self._out)

    @property
    def update_bytes(self) -> int:
        """Bytes written after the opening keyframe: what the screen's changes cost."""
        return len(self._out) - self._opening_size

    @property
    def bytes_so_far(self) -> bytes:
        return bytes(self._out)

    @property
    def record_count(self) -> int:
        return self._count

    @property
    def last_ts_ns(self) -> int:
        return self._last_ts

    # -- writing -------------------------------------------------------------

    def _begin(self, kind: int, ts_ns: int) -> None:
        self._out.append(kind)
        self._out += uv(ts_ns - self.header.base_ns)
        self._last_ts = ts_ns
        self._count += 1

    def _keyframe(self, ts_ns: int) -> None:
        rgb = bytes(self._fb.pixels)
        layout = self._policy(rgb, None)
        if layout.predicted and self.header.version >= 2:
            self._begin(PREDICTED_KEYFRAME, ts_ns)
            self._out += predict_planar(rgb, self._fb.width)
        else:
            self._begin(RecordType.KEYFRAME | (RecordType.PLANAR if layout.planar else 0), ts_ns)
            self._out += encode_pixels(rgb, None, Layout(planar=layout.planar))
        self._last_keyframe = ts_ns

    def _restate_pointer(self, ts_ns: int) -> None:
        # Pointer state is not in the keyframe's pixels; repeating it here is what lets
        # the segment play on its own with the right cursor.
        pointer = self._fb.pointer
        if isinstance(pointer.shape, PointerShape):
            self._pointer_shape(ts_ns, pointer.shape)
        elif isinstance(pointer.shape, PointerDefault):
            self._begin(RecordType.POINTER_DEFAULT, ts_ns)
        if pointer.shape is not None or (pointer.x, pointer.y) != (0, 0):
            self._begin(RecordType.POINTER, ts_ns)
            self._out += uv(pointer.x) + uv(pointer.y)

    def keyframe(self, ts_ns: int) -> None:
        """Force a keyframe now (e.g. after a reconnect)."""
        self._check_time(ts_ns)
        self._keyframe(ts_ns)

    def _check_time(self, ts_ns: int) -> None:
        if self._finished:
            raise RuntimeError("segment already finished")
        if ts_ns < self._last_ts:
            raise ValueError(f"timestamp {ts_ns} earlier than previous {self._last_ts}")
        if ts_ns > MAX_NS:
            raise ValueError(f"timestamp {ts_ns} out of range")

    def add(self, ts_ns: int, record: Record) -> None:
        self._check_time(ts_ns)
        # A resize writes its own keyframe right after it.
        if (self._interval is not None and ts_ns - self._last_keyframe >= self._interval
                and not isinstance(record, DesktopResize)):
            self._keyframe(ts_ns)
        if isinstance(record, Rect):
            self._rect(ts_ns, record)
        elif isinstance(record, DesktopResize):
            check_size(record.width, record.height)
            self._begin(RecordType.RESIZE, ts_ns)
            self._out += uv(record.width) + uv(record.height)
            self._fb.resize(record.width, record.height)
            # The format requires it: it defines the new content and keeps the decoder's
            # work proportional to its input (see docs/format.md).
            self._keyframe(ts_ns)
        elif isinstance(record, Pointer):
            if not (0 <= record.x <= MAX_COORDINATE and 0 <= record.y <= MAX_COORDINATE):
                raise ValueError(f"pointer position {record.x},{record.y} out of range")
            self._begin(RecordType.POINTER, ts_ns)
            self._out += uv(record.x) + uv(record.y)
            self._fb.apply(record)
        elif isinstance(record, PointerShape):
            self._pointer_shape(ts_ns, record)
        elif isinstance(record, PointerDefault):
            self._begin(RecordType.POINTER_DEFAULT, ts_ns)
            self._fb.apply(record)
        elif isinstance(record, Start):
            payload = _text(record.detail)
            self._begin(RecordType.START, ts_ns)
            self._out += payload
        elif isinstance(record, Stop):
            payload = _text(record.reason)
            self._begin(RecordType.STOP, ts_ns)
            self._out += payload
        elif isinstance(record, Gap):
            if not 0 <= record.start_ns <= record.end_ns <= MAX_NS:
                raise ValueError(f"gap {record.start_ns}..{record.end_ns} is not a valid range")
            payload = (uv(record.start_ns) + uv(record.end_ns - record.start_ns)
                       + _text(record.reason))
            self._begin(RecordType.GAP, ts_ns)
            self._out += payload
        elif isinstance(record, Keyframe):
            raise ValueError("keyframes are written by the writer; use keyframe(ts_ns)")
        else:
            raise TypeError(f"not a record: {record!r}")

    def _rect(self, ts_ns: int, rect: Rect) -> None:
        if not self._fb.contains(rect.x, rect.y, rect.width, rect.height):
            raise ValueError(f"rect {rect.width}x{rect.height}+{rect.x}+{rect.y} outside "
                             f"{self._fb.width}x{self._fb.height}")
        if len(rect.rgb) != rect.width * rect.height * 3:
            raise ValueError(f"rect {rect.width}x{rect.height} needs "
                             f"{rect.width * rect.height * 3} bytes, got {len(rect.rgb)}")
        rgb = bytes(rect.rgb)
        if self._hints is not None:
            fb = self._fb
            copy = find_copy(fb.pixels, fb.width, fb.height, rect.x, rect.y, rect.width,
                             rect.height, rgb, self._hints)
            if copy is not None:
                self._copy_rect(ts_ns, rect, rgb, copy)
                return
        core = native.core
        if core is not None and self._policy is adaptive_layout:
            # One native call does what the lines below do (the tests compare both).
            fb = self._fb
            self._out += core.encode_rect(fb.pixels, fb.width, fb.height, rect.x, rect.y,
                                          rect.width, rect.height, rgb, RecordType.RECT,
                                          RecordType.PLANAR, RecordType.XOR,
                                          ts_ns - self.header.base_ns)
            self._last_ts = ts_ns
            self._count += 1
            return
        previous = self._fb.region(rect.x, rect.y, rect.width, rect.height)
        layout = self._policy(rgb, previous)
        kind = (RecordType.RECT | (RecordType.PLANAR if layout.planar else 0)
                | (RecordType.XOR if layout.xor else 0))
        self._begin(kind, ts_ns)
        self._out += uv(rect.x) + uv(rect.y) + uv(rect.width) + uv(rect.height)
        self._out += encode_pixels(rgb, previous, layout)
        self._fb.paste(rect.x, rect.y, rect.width, rect.height, rgb)

    def _copy_rect(self, ts_ns: int, rect: Rect, rgb: bytes, copy: Copy) -> None:
        row = rect.width * 3
        start, end = copy.first_row * row, (copy.first_row + copy.rows) * row
        rest = rgb[:start] + rgb[end:]
        kind = RecordType.COPY_RECT
        payload = b""
        if rest:
            previous = self._fb.region_except_rows(rect.x, rect.y, rect.width, rect.height,
                                                   copy.first_row, copy.rows)
            layout = self._policy(rest, previous)
            kind |= ((RecordType.PLANAR if layout.planar else 0)
                     | (RecordType.XOR if layout.xor else 0))
            payload = encode_pixels(rest, previous, layout)
        self._begin(kind, ts_ns)
        self._out += (uv(rect.x) + uv(rect.y) + uv(rect.width) + uv(rect.height)
                      + uv(copy.first_row) + uv(copy.rows) + uv(copy.src_x) + uv(copy.src_y))
        self._out += payload
        self._fb.paste(rect.x, rect.y, rect.width, rect.height, rgb)
        assert self._hints is not None  # only version 2 finds copies
        remember(self._hints, (copy.src_x - rect.x, copy.src_y - rect.y - copy.first_row))

    def _pointer_shape(self, ts_ns: int, shape: PointerShape) -> None:
        w, h = shape.width, shape.height
        if not (0 <= w <= MAX_POINTER_DIMENSION and 0 <= h <= MAX_POINTER_DIMENSION):
            raise ValueError(f"pointer shape {w}x{h} larger than {MAX_POINTER_DIMENSION}")
        if (w == 0) != (h == 0):
            raise ValueError("pointer shape must be empty (0x0) or have both dimensions")
        if w and not (0 <= shape.hotspot_x < w and 0 <= shape.hotspot_y < h):
            raise ValueError("pointer hotspot outside the shape")
        if not w and (shape.hotspot_x or shape.hotspot_y):
            raise ValueError("hidden pointer must have hotspot 0,0")
        if len(shape.rgba) != w * h * 4:
            raise ValueError(f"pointer shape {w}x{h} needs {w * h * 4} bytes, "
                             f"got {len(shape.rgba)}")
        self._begin(RecordType.POINTER_SHAPE, ts_ns)
        self._out += uv(w) + uv(h) + uv(shape.hotspot_x) + uv(shape.hotspot_y) + bytes(shape.rgba)
        self._fb.apply(shape)

    def finish(self, end_ns: int | None = None) -> bytes:
        """Close the segment at `end_ns` (default: the last record's time) and return its bytes."""
        end = self._last_ts if end_ns is None else end_ns
        self._check_time(end)
        self._finished = True
        self._out += Trailer(end - self.header.base_ns, self._count).pack()
        return bytes(self._out)
