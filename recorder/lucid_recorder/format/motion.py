"""Find where an update's pixels already are on screen: scrolls and moves become copies.

A scrolled page or terminal repaints every tile of its window, yet almost every row of
those tiles is already in the framebuffer, a few pixels higher or lower. The writer
stores such rows as a copy (format version 2, COPY_RECT) instead of their pixels.

The search is deterministic and bounded, and lucid_native.find_copy must return exactly
what find_copy_reference returns (the tests compare both). For a rectangle it tries, in
order: the same place (nothing changed), the offsets that matched recently (`hints`),
then vertical offsets nearest first, found by matching one probe row of the update
against the framebuffer's rows at the same columns. An offset's match is the longest run
of whole rows around the probe row that equal the framebuffer at that offset; the best
run wins (the earliest offset on ties), and it must cover MIN_COPY_PIXELS, or the whole
rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import native

MIN_COPY_PIXELS = 512
# Probe-row matches verified per rectangle: bounds the search on pages of blank rows.
MAX_PROBE_MATCHES = 8
# Offsets remembered between rectangles (a scroll repaints many tiles by one offset).
MAX_HINTS = 4


@dataclass(frozen=True, slots=True)
class Copy:
    """Rows first_row .. first_row+rows-1 of the update equal the framebuffer's pixels
    at (src_x, src_y), `rows` rows of the update's width."""

    first_row: int
    rows: int
    src_x: int
    src_y: int


def find_copy(fb: bytes | bytearray, fb_width: int, fb_height: int, x: int, y: int,
              width: int, height: int, rgb: bytes, hints: list[tuple[int, int]]) -> Copy | None:
    core = native.core
    if core is not None:
        found = core.find_copy(fb, fb_width, fb_height, x, y, width, height, rgb, hints)
        return None if found is None else Copy(*found)
    return find_copy_reference(fb, fb_width, fb_height, x, y, width, height, rgb, hints)


def remember(hints: list[tuple[int, int]], offset: tuple[int, int]) -> None:
    """Move a matched offset to the front of the hints (never (0, 0): it is always tried)."""
    if offset == (0, 0):
        return
    if offset in hints:
        hints.remove(offset)
    hints.insert(0, offset)
    del hints[MAX_HINTS:]


def _probe_row(rgb: bytes, row_bytes: int, height: int) -> int:
    """The first row that is not one colour, else 0: a blank row matches everywhere."""
    for r in range(height):
        row = rgb[r * row_bytes:(r + 1) * row_bytes]
        if row != row[:3] * (row_bytes // 3):
            return r
    return 0


def find_copy_reference(fb: bytes | bytearray, fb_width: int, fb_height: int, x: int, y: int,
                        width: int, height: int, rgb: bytes,
                        hints: list[tuple[int, int]]) -> Copy | None:
    """The definition of the search (module docstring); lucid_native.find_copy matches it."""
    stride = fb_width * 3
    row_bytes = width * 3
    probe = _probe_row(rgb, row_bytes, height)

    def fb_row(sx: int, sy: int) -> bytes | bytearray:
        at = sy * stride + sx * 3
        return fb[at:at + row_bytes]

    def row(r: int) -> bytes:
        return rgb[r * row_bytes:(r + 1) * row_bytes]

    def run(dx: int, dy: int) -> tuple[int, int]:
        """(first row, rows) of the matching run around the probe row; (0, 0) if none."""
        sx = x + dx
        if not (0 <= sx and sx + width <= fb_width):
            return 0, 0
        if not 0 <= y + dy + probe < fb_height:
            return 0, 0
        if fb_row(sx, y + dy + probe) != row(probe):
            return 0, 0
        first = probe
        while (first > 0 and y + dy + first - 1 >= 0
               and fb_row(sx, y + dy + first - 1) == row(first - 1)):
            first -= 1
        last = probe + 1
        while (last < height and y + dy + last < fb_height
               and fb_row(sx, y + dy + last) == row(last)):
            last += 1
        return first, last - first

    best: tuple[int, int, int, int] | None = None  # rows, first, dx, dy

    def consider(dx: int, dy: int) -> bool:
        """Keep (dx, dy) if it beats the best so far; True when it covers every row."""
        nonlocal best
        first, rows = run(dx, dy)
        if rows and (best is None or rows > best[0]):
            best = (rows, first, dx, dy)
        return rows == height

    done = consider(0, 0)
    for dx, dy in hints:
        if done:
            break
        if (dx, dy) != (0, 0):
            done = consider(dx, dy)
    if not done:
        probe_row = row(probe)
        matches = 0
        for distance in range(1, fb_height):
            for dy in (distance, -distance):
                sy = y + dy + probe
                if not 0 <= sy < fb_height or fb_row(x, sy) != probe_row:
                    continue
                matches += 1
                if consider(0, dy):
                    done = True
                    break
                if matches >= MAX_PROBE_MATCHES:
                    break
            if done or matches >= MAX_PROBE_MATCHES:
                break
            if y + distance + probe >= fb_height and y - distance + probe < 0:
                break
    if best is None:
        return None
    rows, first, dx, dy = best
    if rows < height and rows * width < MIN_COPY_PIXELS:
        return None
    return Copy(first, rows, x + dx, y + dy + first)
