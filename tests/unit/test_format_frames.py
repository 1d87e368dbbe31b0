"""Frame limiting (spec.recording.maxFps): fewer records, every written frame pixel-exact."""

from __future__ import annotations

import random

import pytest

from lucid_recorder.format import (
    Framebuffer,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    Record,
    RecordingWriter,
    Rect,
    Start,
    Stop,
    TimedRecord,
    read_segment,
)
from lucid_recorder.format.frames import FrameLimiter, uncovered
from tests.unit.test_format_roundtrip import random_session

MS = 1_000_000
FRAME = 100 * MS
pytestmark = pytest.mark.usefixtures("implementation")


def solid(x: int, y: int, w: int, h: int, colour: int) -> Rect:
    return Rect(x, y, w, h, bytes([colour, colour // 2, 255 - colour]) * (w * h))


def write(records: list[TimedRecord], width: int, height: int, frame_ns: int | None,
          **kwargs: object) -> list[bytes]:
    writer = RecordingWriter(width, height, segment_ns=10**12, frame_interval_ns=frame_ns,
                             **kwargs)  # type: ignore[arg-type]
    segments = [done.data for item in records for done in writer.add(item.ts_ns, item.record)]
    return [*segments, writer.close().data]


def decoded(segments: list[bytes]) -> list[TimedRecord]:
    return [item for data in segments for item in read_segment(data).records
            if not isinstance(item.record, Keyframe)]


def screen_at(records: list[TimedRecord], width: int, height: int, ts_ns: int) -> Framebuffer:
    fb = Framebuffer(width, height)
    for item in records:
        if item.ts_ns > ts_ns:
            break
        fb.apply(item.record)
    return fb


def states_before_markers(records: list[TimedRecord], width: int,
                          height: int) -> list[tuple[int, int, bytes, int, int]]:
    """The screen just before each record that is not a rectangle or a pointer move."""
    fb = Framebuffer(width, height)
    out = []
    for item in records:
        if not isinstance(item.record, Rect | Pointer):
            out.append((fb.width, fb.height, bytes(fb.pixels), fb.pointer.x, fb.pointer.y))
        fb.apply(item.record)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_every_written_frame_is_the_exact_screen_at_its_time(seed: int) -> None:
    given = random_session(seed, n=400)
    stored = decoded(write(given, 64, 48, FRAME))
    moves = {item.ts_ns for item in given if isinstance(item.record, Rect | Pointer)}
    frames = {item.ts_ns for item in stored if isinstance(item.record, Rect | Pointer)}
    assert len(frames) < len(moves)
    # A frame is stamped with its last update's time: there the written recording and the
    # update stream show the same pixels, pointer and size (unless a marker of that same
    # instant came between them, checked next).
    instants = {item.ts_ns for item in stored if not isinstance(item.record, Rect | Pointer)}
    for ts in sorted(frames - instants):
        ours, truth = screen_at(stored, 64, 48, ts), screen_at(given, 64, 48, ts)
        assert (ours.width, ours.height, ours.pixels) == (truth.width, truth.height,
                                                          truth.pixels), ts
        assert (ours.pointer.x, ours.pointer.y) == (truth.pointer.x, truth.pointer.y), ts
    # Every other record flushes the frame first: the screen before it is the same.
    assert states_before_markers(stored, 64, 48) == states_before_markers(given, 64, 48)
    end = given[-1].ts_ns
    assert screen_at(stored, 64, 48, end).pixels == screen_at(given, 64, 48, end).pixels
    # Markers pass unchanged and in order.
    markers = [item for item in given if isinstance(item.record, Start | Stop | Gap)]
    assert [item for item in stored if isinstance(item.record, Start | Stop | Gap)] == markers


def test_a_busy_second_becomes_ten_frames() -> None:
    rng = random.Random(3)
    given = [TimedRecord(ms * MS, solid(8 * rng.randrange(7), 8 * rng.randrange(5), 8, 8,
                                               ms % 256))
             for ms in range(1000)]
    stored = decoded(write(given, 64, 48, FRAME))
    frames = sorted({item.ts_ns for item in stored if isinstance(item.record, Rect)})
    assert len(frames) == 10
    # Each frame is stamped with the last update it holds: 99 ms, 199 ms, ...
    assert frames == [(100 * k + 99) * MS for k in range(10)]
    # 35 tiles: a frame writes each at most once.
    assert len(stored) <= 10 * 35


def test_a_region_repainted_within_a_frame_is_written_once_with_its_last_pixels() -> None:
    given = [TimedRecord(t * MS, solid(4, 4, 16, 16, t)) for t in range(50)]
    # A rectangle inside a larger one of the same frame adds nothing either.
    given.append(TimedRecord(50 * MS, solid(6, 6, 4, 4, 200)))
    given.append(TimedRecord(51 * MS, Pointer(7, 9)))
    given.append(TimedRecord(52 * MS, Pointer(8, 10)))
    stored = decoded(write(given, 64, 48, FRAME))
    rects = [item for item in stored if isinstance(item.record, Rect)]
    assert len(rects) == 1
    assert rects[0].ts_ns == 52 * MS
    fb = screen_at(given, 64, 48, 52 * MS)
    assert rects[0].record.rgb == fb.region(4, 4, 16, 16)
    assert [item for item in stored if isinstance(item.record, Pointer)] == [
        TimedRecord(52 * MS, Pointer(8, 10))]


def test_other_records_flush_the_frame_first_so_order_is_kept() -> None:
    limiter = FrameLimiter(32, 32, FRAME)
    assert limiter.add(1 * MS, solid(0, 0, 4, 4, 9)) == []
    assert limiter.holding
    out = limiter.add(2 * MS, PointerDefault())
    assert [type(record) for _, record in out] == [Rect, PointerDefault]
    assert [ts for ts, _ in out] == [1 * MS, 2 * MS]
    assert not limiter.holding
    assert limiter.flush() == []


def test_flush_writes_the_held_frame_now_and_close_keeps_it() -> None:
    writer = RecordingWriter(32, 32, segment_ns=10**12, frame_interval_ns=FRAME)
    assert writer.add(5 * MS, solid(0, 0, 8, 8, 1)) == []
    before = writer.current.record_count
    assert writer.flush() == []
    assert writer.current.record_count == before + 1
    writer.add(6 * MS, solid(8, 8, 8, 8, 2))
    last = read_segment(writer.close().data)
    assert [item.record for item in last.records if isinstance(item.record, Rect)][-1] == (
        solid(8, 8, 8, 8, 2))


def test_frames_cross_segment_limits_and_each_segment_still_decodes_alone() -> None:
    given = random_session(11, n=600)
    segments = write(given, 64, 48, FRAME, max_segment_bytes=4096)
    assert len(segments) > 3
    for count, data in enumerate(segments, 1):
        segment = read_segment(data)
        fb = Framebuffer(segment.header.width, segment.header.height)
        for item in segment.records:
            fb.apply(item.record)
        # Alone, it ends where the whole recording up to it ends.
        truth = Framebuffer(64, 48)
        for item in decoded(segments[:count]):
            truth.apply(item.record)
        assert (fb.width, fb.height, fb.pixels) == (truth.width, truth.height, truth.pixels)
    end = given[-1].ts_ns
    assert screen_at(decoded(segments), 64, 48, end).pixels == screen_at(given, 64, 48,
                                                                         end).pixels


def test_without_an_interval_every_update_is_written_as_before() -> None:
    given = random_session(5)
    assert write(given, 64, 48, None) == write(given, 64, 48, None)
    assert decoded(write(given, 64, 48, None)) == given


@pytest.mark.parametrize(("record", "message"), [
    (Rect(60, 0, 8, 8, bytes(8 * 8 * 3)), "outside"),
    (Rect(0, 0, 2, 2, b"\0"), "needs 12 bytes"),
])
def test_bad_rectangles_are_refused_before_anything_is_held(record: Record,
                                                            message: str) -> None:
    limiter = FrameLimiter(64, 48, FRAME)
    limiter.add(0, solid(0, 0, 4, 4, 7))
    with pytest.raises(ValueError, match=message):
        limiter.add(1, record)
    assert [r for _, r in limiter.flush()] == [solid(0, 0, 4, 4, 7)]


def test_time_going_backwards_and_bad_intervals_are_refused() -> None:
    limiter = FrameLimiter(64, 48, FRAME)
    limiter.add(10, solid(0, 0, 4, 4, 7))
    with pytest.raises(ValueError, match="earlier than previous"):
        limiter.add(9, solid(0, 0, 4, 4, 7))
    for bad in (0, -1):
        with pytest.raises(ValueError, match="interval_ns must be positive"):
            FrameLimiter(64, 48, bad)


def test_uncovered_keeps_distinct_areas_no_other_contains_in_first_order() -> None:
    tiles = [(x, y, 16, 16) for y in range(0, 64, 16) for x in range(0, 64, 16)]
    assert uncovered(tiles) == tiles
    assert uncovered([(2, 2, 4, 4), (0, 0, 10, 10), (2, 2, 4, 4), (9, 9, 4, 4)]) == [
        (0, 0, 10, 10), (9, 9, 4, 4)]
    # Overlapping but not contained: both stay.
    assert uncovered([(0, 0, 8, 8), (4, 4, 8, 8)]) == [(0, 0, 8, 8), (4, 4, 8, 8)]
    assert uncovered([]) == []
