"""Frames at most every `interval_ns`: what spec.recording.maxFps promises (pure).

An RDP server sends a fast client every intermediate state of the screen, and merges
updates for a slow one: the number of updates, and so the stored bytes and the CPU, was
set by how fast the recorder read, not by what the screen showed (docs/benchmarks.md).
Held for one frame interval, the updates are applied to a copy of the live screen and
written as one frame: each changed area once, with the screen's pixels at the end of the
interval. Every frame written is the exact screen at that moment; a state the screen held
for less than one interval is not written (video at the same frame rate loses it too,
and loses pixels besides).
"""

from __future__ import annotations

from .framebuffer import Framebuffer
from .records import DesktopResize, Pointer, Record, Rect

Area = tuple[int, int, int, int]  # x, y, width, height
Timed = tuple[int, Record]


class FrameLimiter:
    """Feed records in time order; get back the records to write, frame by frame.

    Rectangles and pointer moves are held until a record arrives one interval or more
    after the first held one (and later than the last), or until `flush()`. Any other
    record (a pointer shape, a resize, a marker) first flushes what is held, so the order
    of what is written stays the order of what happened. The frame is stamped with its
    last update's time.
    """

    def __init__(self, width: int, height: int, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError("interval_ns must be positive")
        self._screen = Framebuffer(width, height)
        self._interval = interval_ns
        # Insertion-ordered set: a region repainted many times in one frame is written once.
        self._damage: dict[Area, None] = {}
        self._pointer: Pointer | None = None
        self._opened_ns: int | None = None
        self._last_ns = 0

    @property
    def holding(self) -> bool:
        return self._opened_ns is not None

    def add(self, ts_ns: int, record: Record) -> list[Timed]:
        if ts_ns < self._last_ns:
            raise ValueError(f"timestamp {ts_ns} earlier than previous {self._last_ns}")
        out = []
        # Updates of one instant (one PDU's rectangles) stay in one frame.
        if (self._opened_ns is not None and ts_ns - self._opened_ns >= self._interval
                and ts_ns > self._last_ns):
            out = self.flush()
        if isinstance(record, Rect):
            # Raises ValueError, before anything is held, for a rectangle off the screen.
            self._screen.paste(record.x, record.y, record.width, record.height, record.rgb)
            self._damage[record.x, record.y, record.width, record.height] = None
        elif isinstance(record, Pointer):
            self._pointer = record
        else:
            out += self.flush()
            if isinstance(record, DesktopResize):
                self._screen.resize(record.width, record.height)
            self._last_ns = ts_ns
            out.append((ts_ns, record))
            return out
        self._last_ns = ts_ns
        if self._opened_ns is None:
            self._opened_ns = ts_ns
        return out

    def flush(self) -> list[Timed]:
        """The held frame's records, now (nothing when nothing is held)."""
        if self._opened_ns is None:
            return []
        ts = self._last_ns
        screen = self._screen
        out: list[Timed] = [(ts, Rect(x, y, w, h, screen.region(x, y, w, h)))
                            for x, y, w, h in uncovered(self._damage)]
        if self._pointer is not None:
            out.append((ts, self._pointer))
        self._damage = {}
        self._pointer = None
        self._opened_ns = None
        return out


def uncovered(areas: dict[Area, None] | list[Area]) -> list[Area]:
    """The distinct areas that no other area of the list contains, in their first order.

    Every area is written with the frame's final pixels, so one inside another adds
    nothing. Only a larger area can contain a distinct one, so the many equal tiles of a
    scrolled or repainted screen are never compared with each other.
    """
    distinct = list(dict.fromkeys(areas))
    kept: list[tuple[int, Area]] = []  # (size, area), largest first
    for area in sorted(distinct, key=lambda a: a[2] * a[3], reverse=True):
        x, y, w, h = area
        size = w * h
        for kept_size, (kx, ky, kw, kh) in kept:
            if kept_size <= size:
                kept.append((size, area))
                break
            if kx <= x and ky <= y and x + w <= kx + kw and y + h <= ky + kh:
                break
        else:
            kept.append((size, area))
    survivors = {area for _, area in kept}
    return [area for area in distinct if area in survivors]
