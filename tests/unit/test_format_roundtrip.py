"""Encoder/decoder round trips: what goes in comes out, pixel for pixel, segment by segment."""

from __future__ import annotations

import itertools
import random

import pytest

from lucid_recorder.format import (
    INTERLEAVED,
    PLANAR,
    PREDICTED_PLANAR,
    XOR_INTERLEAVED,
    XOR_PLANAR,
    DesktopResize,
    Framebuffer,
    Gap,
    Keyframe,
    Layout,
    Pointer,
    PointerDefault,
    PointerShape,
    RecordingWriter,
    RecordType,
    Rect,
    SegmentWriter,
    Start,
    Stop,
    TimedRecord,
    peek_segment,
    read_segment,
)
from lucid_recorder.format.encoding import adaptive_layout, fixed_layout, predicted_keyframes
from lucid_recorder.format.varint import decode_uvarint, encode_uvarint

MS = 1_000_000
# Every round trip runs on the pure-Python reference and on lucid_native (conftest.py).
pytestmark = pytest.mark.usefixtures("implementation")


def random_rect(rng: random.Random, width: int, height: int) -> Rect:
    w, h = rng.randint(1, min(40, width)), rng.randint(1, min(30, height))
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    if rng.random() < 0.5:
        # Flat UI-like content: a few colours.
        palette = [bytes(rng.randrange(256) for _ in range(3)) for _ in range(3)]
        rgb = b"".join(rng.choice(palette) for _ in range(w * h))
    else:
        rgb = rng.randbytes(w * h * 3)
    return Rect(x, y, w, h, rgb)


def random_session(seed: int, width: int = 64, height: int = 48, n: int = 200) -> list[TimedRecord]:
    rng = random.Random(seed)
    out = [TimedRecord(0, Start('{"bpp": 32, "tls": "Fingerprint"}'))]
    ts = 0
    for _ in range(n):
        ts += rng.choice([0, 0, 1, 7 * MS, 40 * MS, 1300 * MS])
        roll = rng.random()
        if roll < 0.75:
            out.append(TimedRecord(ts, random_rect(rng, width, height)))
        elif roll < 0.85:
            out.append(TimedRecord(ts, Pointer(rng.randrange(width), rng.randrange(height))))
        elif roll < 0.87:
            out.append(TimedRecord(ts, PointerDefault()))
        elif roll < 0.9:
            w, h = rng.randint(1, 8), rng.randint(1, 8)
            out.append(TimedRecord(ts, PointerShape(w, h, rng.randrange(w), rng.randrange(h),
                                                    rng.randbytes(w * h * 4))))
        elif roll < 0.95:
            out.append(TimedRecord(ts, Gap(max(0, ts - 500 * MS), ts, "reconnect ✓")))
        else:
            width, height = rng.randint(8, 80), rng.randint(8, 60)
            out.append(TimedRecord(ts, DesktopResize(width, height)))
    out.append(TimedRecord(ts + MS, Stop("done")))
    return out


def replay(records: list[TimedRecord], width: int, height: int,
           until_ns: int | None = None) -> Framebuffer:
    fb = Framebuffer(width, height)
    for item in records:
        if until_ns is not None and item.ts_ns > until_ns:
            break
        fb.apply(item.record)
    return fb


def without_keyframes(records: list[TimedRecord]) -> list[TimedRecord]:
    return [r for r in records if not isinstance(r.record, Keyframe)]


def test_varint_round_trip() -> None:
    for value in [0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1]:
        encoded = encode_uvarint(value)
        assert decode_uvarint(encoded + b"\xff", 0) == (value, len(encoded))


@pytest.mark.parametrize("layout", [INTERLEAVED, PLANAR, XOR_INTERLEAVED, XOR_PLANAR, None])
@pytest.mark.parametrize("seed", range(4))
def test_single_segment_round_trip(layout: Layout | None, seed: int) -> None:
    records = random_session(seed)
    policy = adaptive_layout if layout is None else fixed_layout(layout)
    writer = SegmentWriter(64, 48, 0, None, layout_policy=policy, seq=7,
                           session_start_unix_ns=1_700_000_000 * 10**9)
    for item in records:
        writer.add(item.ts_ns, item.record)
    data = writer.finish()
    segment = read_segment(data)

    assert segment.header.seq == 7
    assert segment.header.session_start_unix_ns == 1_700_000_000 * 10**9
    assert segment.end_ns == records[-1].ts_ns
    decoded = without_keyframes(segment.records)
    # The writer adds a keyframe after every resize; everything else comes back as given.
    assert decoded == records
    assert segment.records[0] == TimedRecord(0, Keyframe(64, 48, bytes(64 * 48 * 3)))
    final = replay(segment.records, 64, 48)
    expected = replay(records, 64, 48)
    assert (final.width, final.height, final.pixels) == (expected.width, expected.height,
                                                         expected.pixels)


def test_fixed_layouts_use_their_record_types() -> None:
    rng = random.Random(1)
    for layout, kind in [(INTERLEAVED, 0x20), (PLANAR, 0x21), (XOR_INTERLEAVED, 0x22),
                         (XOR_PLANAR, 0x23)]:
        writer = SegmentWriter(8, 8, 0, layout_policy=fixed_layout(layout))
        before = writer.size
        writer.add(5, Rect(1, 2, 3, 4, rng.randbytes(36)))
        assert writer.bytes_so_far[before] == kind
        assert read_segment(writer.finish()).records[1].record.rgb == writer.framebuffer.region(
            1, 2, 3, 4)


def test_adaptive_layout_keeps_text_interleaved_and_photos_planar() -> None:
    rng = random.Random(2)
    text = b"".join(rng.choice([b"\xff\xff\xff", b"\x00\x00\x00", b"\x80\x80\x80"])
                    for _ in range(64 * 64))
    photo = rng.randbytes(64 * 64 * 3)
    other = rng.randbytes(len(photo))
    assert adaptive_layout(text, other) == INTERLEAVED
    assert adaptive_layout(photo, photo) == XOR_PLANAR
    assert adaptive_layout(photo, other) == PLANAR
    assert adaptive_layout(text, None) == INTERLEAVED
    assert adaptive_layout(photo, None) == PLANAR
    assert predicted_keyframes(text, None) == PREDICTED_PLANAR
    assert predicted_keyframes(photo, other) == PLANAR


def test_keyframes_at_interval() -> None:
    writer = SegmentWriter(4, 4, 1000, keyframe_interval_ns=100)
    for ts in range(1000, 1500, 30):
        writer.add(ts, Pointer(1, 1))
    segment = read_segment(writer.finish())
    key_times = [r.ts_ns for r in segment.records if isinstance(r.record, Keyframe)]
    assert key_times == [1000, 1120, 1240, 1360, 1480]


def test_resize_is_followed_by_a_keyframe_keeping_the_overlap() -> None:
    writer = SegmentWriter(4, 2, 0)
    writer.add(1, Rect(0, 0, 4, 2, bytes(range(24))))
    writer.add(2, DesktopResize(2, 3))
    segment = read_segment(writer.finish())
    kinds = [type(r.record) for r in segment.records]
    assert kinds == [Keyframe, Rect, DesktopResize, Keyframe]
    assert segment.records[-1].record == Keyframe(2, 3, bytes(range(6)) + bytes(range(12, 18))
                                                  + bytes(6))


def test_every_segment_decodes_on_its_own() -> None:
    records = random_session(11, n=400)
    writer = RecordingWriter(64, 48, segment_ns=700 * MS, keyframe_interval_ns=300 * MS,
                             session_start_unix_ns=123)
    segments = [s for item in records for s in writer.add(item.ts_ns, item.record)]
    segments.append(writer.close())
    assert len(segments) > 5

    for previous, segment in itertools.pairwise(segments):
        assert segment.seq == previous.seq + 1
        assert segment.start_ns == previous.end_ns
    for segment in segments:
        decoded = read_segment(segment.data)  # no state from other segments
        info = peek_segment(segment.data)
        assert (info.start_ns, info.end_ns) == (segment.start_ns, segment.end_ns)
        assert decoded.header.seq == segment.seq
        assert isinstance(decoded.records[0].record, Keyframe)
        # The segment alone reproduces the desktop at its end.
        alone = replay(decoded.records, decoded.header.width, decoded.header.height)
        truth = replay(records, 64, 48, until_ns=max(r.ts_ns for r in decoded.records))
        assert (alone.width, alone.height, alone.pixels) == (truth.width, truth.height,
                                                             truth.pixels)
        assert alone.pointer == truth.pointer

    # All segments together hold every captured record, in order, plus the pointer state
    # each later segment restates right after its first keyframe.
    together: list[TimedRecord] = []
    pointer = Framebuffer(1, 1).pointer
    for s in segments:
        seg = read_segment(s.data)
        decoded = seg.records
        restated = (pointer.shape is not None) + (
            pointer.shape is not None or (pointer.x, pointer.y) != (0, 0))
        assert all(isinstance(r.record, Pointer | PointerShape | PointerDefault)
                   for r in decoded[1 : 1 + restated])
        together += without_keyframes(decoded[1 + restated :])
        pointer = replay(decoded, seg.header.width, seg.header.height).pointer
    assert together == records


def test_byte_limit_counts_updates_not_the_opening_keyframe() -> None:
    # A 320x240 keyframe is 230,400 bytes, far above the 4 KiB limit: were the keyframe
    # counted, every record would close a segment that then opens with a new keyframe.
    writer = RecordingWriter(320, 240, segment_ns=3600 * 10**9, max_segment_bytes=4096)
    def rect(i: int) -> Rect:
        # 768 bytes of noisy pixels, new each time (no row of them is on screen already).
        return Rect(0, 0, 16, 16, bytes((j * 7 + i) % 256 for j in range(768)))
    segments = [s for i in range(100) for s in writer.add(i * MS, rect(i))]
    segments.append(writer.close())
    assert 10 <= len(segments) <= 25
    for segment in segments[:-1]:
        decoded = read_segment(segment.data)
        assert len(without_keyframes(decoded.records)) >= 5


def test_segment_start_restates_pointer() -> None:
    fb = Framebuffer(4, 4)
    shape = PointerShape(1, 1, 0, 0, b"\x01\x02\x03\x04")
    fb.apply(shape)
    fb.apply(Pointer(3, 2))
    segment = read_segment(SegmentWriter(4, 4, 50, framebuffer=fb).finish())
    assert [r.record for r in segment.records[1:]] == [shape, Pointer(3, 2)]
    fb.apply(PointerDefault())
    segment = read_segment(SegmentWriter(4, 4, 50, framebuffer=fb).finish())
    assert [r.record for r in segment.records[1:]] == [PointerDefault(), Pointer(3, 2)]
    assert fb.to_image(with_pointer=True).getpixel((3, 2)) == (0, 0, 0)  # the arrow's outline


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (Rect(60, 0, 5, 1, bytes(15)), "outside"),
        (Rect(0, 0, 0, 1, b""), "outside"),
        (Rect(0, 0, 2, 1, bytes(5)), "needs 6 bytes"),
        (DesktopResize(0, 10), "outside"),
        (DesktopResize(8193, 10), "outside"),
        (Pointer(-1, 0), "out of range"),
        (PointerShape(2, 2, 2, 0, bytes(16)), "hotspot"),
        (PointerShape(600, 1, 0, 0, bytes(2400)), "larger"),
        (Gap(10, 5), "not a valid range"),
        (Stop("x" * 2000), "longer than"),
        (Keyframe(64, 48, bytes(64 * 48 * 3)), "keyframes are written by the writer"),
    ],
)
def test_writer_rejects_bad_records(record: object, message: str) -> None:
    writer = SegmentWriter(64, 48, 0)
    with pytest.raises(ValueError, match=message):
        writer.add(1, record)  # type: ignore[arg-type]


def test_writer_rejects_time_going_backwards_and_use_after_finish() -> None:
    writer = SegmentWriter(8, 8, 100)
    with pytest.raises(ValueError, match="earlier"):
        writer.add(99, Start())
    writer.add(150, Start())
    with pytest.raises(ValueError, match="earlier"):
        writer.finish(120)
    writer.finish(200)
    with pytest.raises(RuntimeError, match="finished"):
        writer.add(300, Start())


def test_header_and_trailer_layout() -> None:
    data = SegmentWriter(3, 2, 5, seq=9).finish(8)
    assert data[:8] == b"LUCIDSEG" and data[8] == 2
    assert data[-8:] == b"LUCIDEND" and data[-21] == RecordType.END
    assert peek_segment(data).end_ns == 8


def test_keyframes_can_be_predicted_in_version_2_and_stay_plain_in_version_1() -> None:
    rng = random.Random(3)
    fb = Framebuffer(33, 17)
    fb.pixels[:] = rng.randbytes(len(fb.pixels))
    for version, kind in ((2, 0x13), (1, 0x11)):
        writer = SegmentWriter(33, 17, 0, framebuffer=fb, version=version,
                               layout_policy=predicted_keyframes)
        data = writer.finish()
        assert data[34] == kind
        keyframe = read_segment(data).records[0].record
        assert keyframe == Keyframe(33, 17, bytes(fb.pixels))
