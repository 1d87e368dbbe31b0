"""Lucid recording format, versions 1 and 2: self-contained segments of timestamped records.

See docs/format.md for the byte layout. Typical use:

    writer = RecordingWriter(1024, 768, segment_ns=10 * 10**9, keyframe_interval_ns=5 * 10**9)
    for ts_ns, record in capture:
        for segment in writer.add(ts_ns, record):
            store(segment.seq, segment.data)
    store_last(writer.close())

    segment = read_segment(data)          # raises a FormatError subclass on any defect
    fb = Framebuffer(segment.header.width, segment.header.height)
    for item in segment.records:
        fb.apply(item.record)
"""

from .encoding import (
    INTERLEAVED,
    PLANAR,
    PREDICTED_PLANAR,
    XOR_INTERLEAVED,
    XOR_PLANAR,
    Layout,
    adaptive_layout,
)
from .errors import (
    BadMagic,
    BadValue,
    FormatError,
    LengthMismatch,
    OutOfBounds,
    TimeWentBackwards,
    Truncated,
    UnknownRecordType,
    UnsupportedVersion,
)
from .framebuffer import Framebuffer
from .header import HEADER_SIZE, MAGIC, TRAILER_SIZE, VERSION, RecordType, SegmentHeader
from .reader import Segment, SegmentInfo, iter_segment, peek_segment, read_segment
from .recording import FinishedSegment, RecordingWriter
from .records import (
    MAX_DIMENSION,
    DesktopResize,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Record,
    Rect,
    Resize,
    Start,
    Stop,
    TimedRecord,
)
from .writer import SegmentWriter

__all__ = [
    "HEADER_SIZE",
    "INTERLEAVED",
    "MAGIC",
    "MAX_DIMENSION",
    "PLANAR",
    "PREDICTED_PLANAR",
    "TRAILER_SIZE",
    "VERSION",
    "XOR_INTERLEAVED",
    "XOR_PLANAR",
    "BadMagic",
    "BadValue",
    "DesktopResize",
    "FinishedSegment",
    "FormatError",
    "Framebuffer",
    "Gap",
    "Keyframe",
    "Layout",
    "LengthMismatch",
    "OutOfBounds",
    "Pointer",
    "PointerDefault",
    "PointerShape",
    "Record",
    "RecordType",
    "RecordingWriter",
    "Rect",
    "Resize",
    "Segment",
    "SegmentHeader",
    "SegmentInfo",
    "SegmentWriter",
    "Start",
    "Stop",
    "TimeWentBackwards",
    "TimedRecord",
    "Truncated",
    "UnknownRecordType",
    "UnsupportedVersion",
    "adaptive_layout",
    "iter_segment",
    "peek_segment",
    "read_segment",
]
