"""Format version 2: updates whose rows are already on screen are stored as copies.

The search (format/motion.py) has a pure-Python reference and a native twin; both must
find the same copies, so the writer's bytes are the same with either. The decoder turns a
COPY_RECT back into the exact Rect the capture gave, and version 1 stays readable.
"""

from __future__ import annotations

import importlib
import random
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucid_recorder import native
from lucid_recorder.format import Framebuffer, RecordingWriter, Rect, SegmentWriter, read_segment
from lucid_recorder.format.header import COPY_RECT_TYPES, RecordType
from lucid_recorder.format.motion import Copy, find_copy_reference, remember

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
W, H = 96, 64
TILE = 16


@pytest.fixture(scope="module")
def core() -> ModuleType:
    return importlib.import_module("lucid_native")


def page(rng: random.Random, width: int, rows: int) -> list[bytes]:
    """Rows of a text-like page: blank rows, and rows of glyph-like runs, some repeated."""
    ink, paper = b"\x10\x10\x10", b"\xf0\xf0\xf0"
    lines: list[bytes] = []
    for _ in range(rows):
        if rng.random() < 0.3:
            lines.append(paper * width)
        elif lines and rng.random() < 0.1:
            lines.append(rng.choice(lines))
        else:
            lines.append(b"".join(rng.choice((ink, paper, paper)) for _ in range(width)))
    return lines


def tiles(fb_rows: list[bytes], width: int) -> list[Rect]:
    """The whole screen as xrdp sends a repaint: TILE x TILE rects, row by row."""
    out = []
    for ty in range(0, len(fb_rows), TILE):
        for tx in range(0, width, TILE):
            w, h = min(TILE, width - tx), min(TILE, len(fb_rows) - ty)
            rgb = b"".join(row[tx * 3:(tx + w) * 3] for row in fb_rows[ty:ty + h])
            out.append(Rect(tx, ty, w, h, rgb))
    return out


def scrolling_session(seed: int) -> list[Rect]:
    """A page scrolled down by a few rows at a time, repainted tile by tile, with new
    rows at the bottom, plus a repaint of nothing new and a few unrelated rects."""
    rng = random.Random(seed)
    document = page(rng, W, 400)
    top = 0
    rects = tiles(document[:H], W)
    for _ in range(12):
        top += rng.choice((1, 3, 8, 13))
        rects += tiles(document[top:top + H], W)
        if rng.random() < 0.3:
            rects += tiles(document[top:top + H], W)  # the same picture again
        if rng.random() < 0.3:
            w, h = rng.randint(1, 20), rng.randint(1, 20)
            rects.append(Rect(rng.randint(0, W - w), rng.randint(0, H - h), w, h,
                              rng.randbytes(w * h * 3)))
    return rects


def write(rects: list[Rect], core: ModuleType | None, version: int = 2) -> bytes:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(native, "core", core)
        writer = SegmentWriter(W, H, 0, version=version)
        for ts, rect in enumerate(rects, 1):
            writer.add(ts, rect)
        return writer.finish()


@pytest.mark.parametrize("seed", range(6))
def test_scrolling_is_stored_as_copies_and_reads_back_exactly(core: ModuleType,
                                                              seed: int) -> None:
    rects = scrolling_session(seed)
    v2 = write(rects, None)
    assert write(rects, core) == v2  # native and reference: the same bytes
    v1 = write(rects, core, version=1)
    assert v1[8] == 1 and v2[8] == 2
    # Scrolled tiles cost a record header instead of their pixels.
    assert len(v2) < len(v1) / 2
    for data in (v1, v2):
        decoded = [r.record for r in read_segment(data).records[1:]]
        assert decoded == rects
    # The reader returns Rects either way; most repainted tiles were COPY_RECTs.
    assert _copy_kinds(v1) == []
    kinds = _copy_kinds(v2)
    assert len(kinds) >= len(rects) // 2
    assert set(kinds) <= COPY_RECT_TYPES


def _copy_kinds(data: bytes) -> list[int]:
    """The type byte of every COPY_RECT the reader decodes in `data`."""
    from lucid_recorder.format import reader

    seen: list[int] = []
    original = reader._copy_rect

    def spy(cur, at, kind, fb):  # type: ignore[no-untyped-def]
        seen.append(kind)
        return original(cur, at, kind, fb)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(reader, "_copy_rect", spy)
        read_segment(data)
    return seen


def test_segments_roll_with_copies_and_each_reads_alone(core: ModuleType) -> None:
    rects = scrolling_session(7)
    writer = RecordingWriter(W, H, segment_ns=10**9, max_segment_bytes=64 * 1024)
    segments = [s for ts, rect in enumerate(rects, 1) for s in writer.add(ts, rect)]
    segments.append(writer.close())
    assert len(segments) > 1
    fb = Framebuffer(W, H)
    for rect in rects:
        fb.apply(rect)
    last = read_segment(segments[-1].data)
    replay = Framebuffer(W, H)
    for item in last.records:
        replay.apply(item.record)
    assert replay.pixels == fb.pixels


def test_a_scroll_is_found_without_hints_and_then_remembered() -> None:
    rng = random.Random(1)
    rows = page(rng, W, H + 5)
    fb = Framebuffer(W, H)
    fb.pixels[:] = b"".join(rows[:H])
    # The picture moved up by 5 rows: the tile at (16, 16) now shows rows 21..36.
    rgb = b"".join(r[16 * 3:32 * 3] for r in rows[21:37])
    hints: list[tuple[int, int]] = []
    copy = find_copy_reference(fb.pixels, W, H, 16, 16, 16, 16, rgb, hints)
    assert copy == Copy(0, 16, 16, 21)
    remember(hints, (0, 5))
    remember(hints, (0, 5))
    assert hints == [(0, 5)]


def test_new_content_is_not_a_copy() -> None:
    fb = Framebuffer(W, H)
    rng = random.Random(2)
    fb.pixels[:] = rng.randbytes(W * H * 3)
    rgb = rng.randbytes(16 * 16 * 3)
    assert find_copy_reference(fb.pixels, W, H, 0, 0, 16, 16, rgb, [(0, 3)]) is None


def _framebuffer_of_patterns(rng: random.Random, width: int, height: int) -> bytearray:
    """Few distinct rows, so that a probe row matches in many places."""
    patterns = [rng.randbytes(width * 3) for _ in range(3)] + [b"\x00" * width * 3]
    return bytearray(b"".join(rng.choice(patterns) for _ in range(height)))


@PROPERTY
@given(data=st.data())
def test_native_search_matches_the_reference(data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    width, height = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    fb = _framebuffer_of_patterns(rng, width, height)
    w, h = rng.randint(1, width), rng.randint(1, height)
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    # Often a shifted region of the framebuffer, sometimes with a few changed bytes.
    sx, sy = rng.randint(0, width - w), rng.randint(0, height - h)
    rgb = bytearray(b"".join(fb[((sy + r) * width + sx) * 3:][:w * 3] for r in range(h)))
    for _ in range(rng.choice((0, 0, 1, 5))):
        rgb[rng.randrange(len(rgb))] ^= 0xFF
    hints = [(rng.randint(-width, width), rng.randint(-height, height))
             for _ in range(rng.randint(0, 4))]
    expected = find_copy_reference(fb, width, height, x, y, w, h, bytes(rgb), hints)
    found = core.find_copy(fb, width, height, x, y, w, h, bytes(rgb), hints)
    assert (None if found is None else Copy(*found)) == expected
    if expected is not None:
        # What it claims holds: those rows are on screen at the source.
        for r in range(expected.rows):
            at = ((expected.src_y + r) * width + expected.src_x) * 3
            row = expected.first_row + r
            assert fb[at:at + w * 3] == rgb[row * w * 3:(row + 1) * w * 3]


def test_native_search_refuses_bad_areas(core: ModuleType) -> None:
    fb = bytearray(4 * 3 * 3)
    with pytest.raises(ValueError, match="outside"):
        core.find_copy(fb, 4, 3, 3, 0, 2, 1, bytes(6), [])
    with pytest.raises(ValueError, match="framebuffer of 36 bytes is not 5x3"):
        core.find_copy(fb, 5, 3, 0, 0, 1, 1, bytes(3), [])
    with pytest.raises(ValueError, match="needs"):
        core.find_copy(fb, 4, 3, 0, 0, 2, 1, bytes(5), [])


def test_the_writer_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="format version 3"):
        SegmentWriter(W, H, 0, version=3)


def test_copy_rect_type_bits() -> None:
    assert RecordType.COPY_RECT == 0x24
    assert COPY_RECT_TYPES == {0x24, 0x25, 0x26, 0x27}
