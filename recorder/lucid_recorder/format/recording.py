"""RecordingWriter: cut a capture stream into contiguous, self-contained segments."""

from __future__ import annotations

from dataclasses import dataclass

from .encoding import LayoutPolicy, adaptive_layout
from .frames import FrameLimiter
from .header import VERSION
from .records import Record, Stop
from .writer import SegmentWriter


@dataclass(frozen=True, slots=True)
class FinishedSegment:
    seq: int
    start_ns: int
    end_ns: int
    data: bytes


class RecordingWriter:
    """Feed records in time order; get finished segments back as they close.

    A segment closes when it spans `segment_ns` or when the records after its opening
    keyframe reach `max_segment_bytes` (counting the keyframe too would let a limit below
    one full frame close a segment after every record, each with its own keyframe); the next
    one starts at exactly the time the previous ended (contiguity is what `verify`
    checks), continues from the same framebuffer and opens with a keyframe of it.

    With `frame_interval_ns`, updates are written as frames at most that often
    (frames.FrameLimiter); `flush()` writes the held frame now, as the pipeline does when
    the screen goes quiet, so a frame never waits for the next update.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        segment_ns: int,
        keyframe_interval_ns: int | None = None,
        max_segment_bytes: int | None = None,
        session_start_unix_ns: int = 0,
        start_ns: int = 0,
        first_seq: int = 0,
        layout_policy: LayoutPolicy = adaptive_layout,
        version: int = VERSION,
        frame_interval_ns: int | None = None,
    ) -> None:
        if segment_ns <= 0:
            raise ValueError("segment_ns must be positive")
        self._frames = (FrameLimiter(width, height, frame_interval_ns)
                        if frame_interval_ns is not None else None)
        self._segment_ns = segment_ns
        self._interval = keyframe_interval_ns
        self._max_bytes = max_segment_bytes
        self._start_unix = session_start_unix_ns
        self._policy = layout_policy
        self._version = version
        self._writer = SegmentWriter(width, height, start_ns, keyframe_interval_ns,
                                     seq=first_seq, session_start_unix_ns=session_start_unix_ns,
                                     layout_policy=layout_policy, version=version)
        self._closed = False

    @property
    def current(self) -> SegmentWriter:
        return self._writer

    def _roll(self, ts_ns: int) -> FinishedSegment:
        old = self._writer
        data = old.finish(ts_ns)
        fb = old.framebuffer
        self._writer = SegmentWriter(fb.width, fb.height, ts_ns, self._interval, fb,
                                     seq=old.header.seq + 1,
                                     session_start_unix_ns=self._start_unix,
                                     layout_policy=self._policy, version=self._version)
        return FinishedSegment(old.header.seq, old.header.base_ns, ts_ns, data)

    def due(self, ts_ns: int) -> bool:
        w = self._writer
        return ts_ns - w.header.base_ns >= self._segment_ns or (
            self._max_bytes is not None and w.update_bytes >= self._max_bytes)

    def add(self, ts_ns: int, record: Record) -> list[FinishedSegment]:
        """Add a record; returns the segments this closed (zero or more)."""
        if self._closed:
            raise RuntimeError("recording already closed")
        if self._frames is None:
            return self._write(ts_ns, record)
        return [done for timed in self._frames.add(ts_ns, record)
                for done in self._write(*timed)]

    def flush(self) -> list[FinishedSegment]:
        """Write the frame held back, if any; returns the segments this closed."""
        if self._closed:
            raise RuntimeError("recording already closed")
        if self._frames is None:
            return []
        return [done for timed in self._frames.flush() for done in self._write(*timed)]

    def _write(self, ts_ns: int, record: Record) -> list[FinishedSegment]:
        done = []
        # A stop ends the recording anyway: splitting before it would only add a keyframe.
        if self.due(ts_ns) and ts_ns > self._writer.header.base_ns and not isinstance(
                record, Stop):
            done.append(self._roll(ts_ns))
        self._writer.add(ts_ns, record)
        return done

    def close(self, end_ns: int | None = None) -> FinishedSegment:
        w = self._writer
        if self._frames is not None:
            # Into this last segment even past its limits: close returns one segment.
            for ts_ns, record in self._frames.flush():
                w.add(ts_ns, record)
        self._closed = True
        end = w.last_ts_ns if end_ns is None else end_ns
        return FinishedSegment(w.header.seq, w.header.base_ns, end, w.finish(end))
