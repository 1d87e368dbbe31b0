"""A recording as a timeline of segments: seek to a time, step through frames, summarise."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from lucid_recorder.format.errors import FormatError
from lucid_recorder.format.framebuffer import Framebuffer
from lucid_recorder.format.reader import SegmentInfo, iter_segment, peek_segment
from lucid_recorder.format.records import (
    DesktopResize,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Rect,
    Stop,
    TimedRecord,
)

from .errors import PlayerError
from .source import RecordingSource


@dataclass(frozen=True, slots=True)
class TimeSpan:
    start_ns: int
    end_ns: int
    reason: str

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class Summary:
    start_ns: int
    end_ns: int
    session_start_unix_ns: int
    width: int
    height: int
    segments: int
    segment_bytes: int  # decrypted and decompressed
    records: int = 0
    updates: int = 0  # distinct timestamps with at least one rectangle
    rectangles: int = 0
    pixel_bytes: int = 0
    keyframes: int = 0
    pointer_moves: int = 0
    pointer_shapes: int = 0
    resizes: list[tuple[int, int, int]] = field(default_factory=list)
    gaps: list[TimeSpan] = field(default_factory=list)  # recorded gap markers
    missing: list[TimeSpan] = field(default_factory=list)  # lost segments
    stop_reason: str | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class Recording:
    """Index a source by segment headers and trailers; decode segments only on demand."""

    def __init__(self, source: RecordingSource) -> None:
        self.source = source
        seqs = source.sequence_numbers()
        if not seqs:
            raise PlayerError(f"{source.describe()}: no segments (expected <seq>.seg files)")
        self.segments: list[tuple[int, SegmentInfo]] = []
        for seq in seqs:
            try:
                info = peek_segment(source.read(seq))
            except FormatError as exc:
                raise PlayerError(f"segment {seq}: {exc}") from None
            if info.header.seq != seq:
                raise PlayerError(f"segment {seq}: header says it is segment {info.header.seq}")
            self.segments.append((seq, info))
        self._starts = [info.start_ns for _, info in self.segments]
        first = self.segments[0][1].header
        self.width, self.height = first.width, first.height
        self.session_start_unix_ns = first.session_start_unix_ns

    @property
    def start_ns(self) -> int:
        return self.segments[0][1].start_ns

    @property
    def end_ns(self) -> int:
        return self.segments[-1][1].end_ns

    def missing_spans(self) -> list[TimeSpan]:
        """Lost segments: holes in the sequence numbers, and time not covered by any segment."""
        spans = []
        for (seq_a, a), (seq_b, b) in pairwise(self.segments):
            if seq_b != seq_a + 1 or b.start_ns != a.end_ns:
                lost = (f"segment {seq_a + 1} missing" if seq_b == seq_a + 2
                        else f"segments {seq_a + 1}..{seq_b - 1} missing" if seq_b > seq_a + 1
                        else f"time not covered between segments {seq_a} and {seq_b}")
                spans.append(TimeSpan(a.end_ns, b.start_ns, lost))
        return spans

    def records(self, index: int) -> Iterator[TimedRecord]:
        seq, _ = self.segments[index]
        try:
            yield from iter_segment(self.source.read(seq))
        except FormatError as exc:
            raise PlayerError(f"segment {seq}: {exc}") from None

    def segment_index(self, t_ns: int) -> int:
        """The segment holding time t: the last one that starts at or before it."""
        return max(0, bisect.bisect_right(self._starts, t_ns) - 1)

    def check_time(self, t_ns: int) -> None:
        if not self.start_ns <= t_ns <= self.end_ns:
            raise PlayerError(f"time {t_ns / 1e9:.3f}s outside the recording "
                              f"({self.start_ns / 1e9:.3f}s..{self.end_ns / 1e9:.3f}s)")

    def frames_at(self, times_ns: Iterable[int]) -> Iterator[tuple[int, Framebuffer]]:
        """The framebuffer at each time (after every record stamped at or before it).

        Times should ascend: then each segment is decoded at most once, from its
        keyframe. The yielded framebuffer is reused; copy it to keep it. A time in a lost
        segment's span shows the last frame before the loss.
        """
        index: int | None = None
        records: Iterator[TimedRecord] = iter(())
        pending: TimedRecord | None = None
        fb: Framebuffer | None = None
        last_t: int | None = None
        for t in times_ns:
            self.check_time(t)
            wanted = self.segment_index(t)
            if wanted != index or (last_t is not None and t < last_t):
                index, records, pending, fb = wanted, self.records(wanted), None, None
            last_t = t
            while True:
                if pending is None:
                    pending = next(records, None)
                    if pending is None:
                        break
                if pending.ts_ns > t:
                    break
                if fb is None:
                    first = pending.record
                    assert isinstance(first, Keyframe)  # the decoder guarantees it
                    fb = Framebuffer(first.width, first.height)
                fb.apply(pending.record)
                pending = None
            assert fb is not None
            yield t, fb

    def frame_at(self, t_ns: int) -> Framebuffer:
        for _, fb in self.frames_at([t_ns]):
            return fb
        raise AssertionError("frames_at yields once per time")

    def summary(self) -> Summary:
        """Decode every segment and count what it holds."""
        s = Summary(self.start_ns, self.end_ns, self.session_start_unix_ns, self.width,
                    self.height, len(self.segments),
                    sum(info.size for _, info in self.segments))
        s.missing = self.missing_spans()
        for index in range(len(self.segments)):
            last_update_ts: int | None = None
            for item in self.records(index):
                s.records += 1
                rec = item.record
                if isinstance(rec, Rect):
                    s.rectangles += 1
                    s.pixel_bytes += len(rec.rgb)
                    if item.ts_ns != last_update_ts:
                        s.updates += 1
                        last_update_ts = item.ts_ns
                elif isinstance(rec, Keyframe):
                    s.keyframes += 1
                elif isinstance(rec, Pointer):
                    s.pointer_moves += 1
                elif isinstance(rec, PointerShape | PointerDefault):
                    s.pointer_shapes += 1
                elif isinstance(rec, DesktopResize):
                    s.resizes.append((item.ts_ns, rec.width, rec.height))
                elif isinstance(rec, Gap):
                    s.gaps.append(TimeSpan(rec.start_ns, rec.end_ns, rec.reason))
                elif isinstance(rec, Stop):
                    s.stop_reason = rec.reason
        return s
