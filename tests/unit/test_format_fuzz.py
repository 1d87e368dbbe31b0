"""Fuzz the decoder: whatever the bytes, it returns a segment or raises FormatError, quickly."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucid_recorder.format import (
    DesktopResize,
    FormatError,
    Gap,
    Pointer,
    PointerDefault,
    PointerShape,
    Rect,
    SegmentWriter,
    Start,
    Stop,
    iter_segment,
    peek_segment,
    read_segment,
)
from lucid_recorder.format.header import SegmentHeader

# No example database: runs stay bounded and leave nothing behind in the work tree.
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _sample() -> bytes:
    rng = random.Random(7)
    writer = SegmentWriter(6, 5, 10, keyframe_interval_ns=40, seq=1)
    writer.add(10, Start("fuzz"))
    for ts in range(11, 120, 9):
        w, h = rng.randint(1, 4), rng.randint(1, 3)
        rgb = rng.randbytes(w * h * 3) if ts % 2 else bytes([ts]) * (w * h * 3)
        writer.add(ts, Rect(rng.randint(0, 6 - w), rng.randint(0, 5 - h), w, h, rgb))
    writer.add(120, Pointer(3, 3))
    writer.add(121, PointerShape(2, 1, 1, 0, bytes(8)))
    writer.add(121, PointerDefault())
    writer.add(122, Gap(50, 122, "x"))
    writer.add(123, DesktopResize(3, 2))
    writer.add(124, Rect(0, 0, 3, 2, bytes(range(18))))
    writer.add(125, Stop("end"))
    return writer.finish(130)


SAMPLE = _sample()
HEADER = SegmentHeader(0, 4, 3, 0, 0).pack()


def decode_all(data: bytes) -> None:
    try:
        read_segment(data)
    except FormatError as exc:
        assert 0 <= exc.offset <= len(data)
    try:
        peek_segment(data)
    except FormatError:
        pass
    try:
        for _ in iter_segment(data):
            pass
    except FormatError:
        pass


edits = st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)),
                 min_size=1, max_size=8)


@FUZZ
@given(edits)
def test_byte_edits(changes: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE)
    for pos, value in changes:
        data[pos] = value
    decode_all(bytes(data))


@FUZZ
@given(st.integers(0, len(SAMPLE)), st.integers(0, 64), st.binary(max_size=64))
def test_splices(at: int, cut: int, inserted: bytes) -> None:
    decode_all(SAMPLE[:at] + inserted + SAMPLE[at + cut :])


@FUZZ
@given(st.binary(max_size=400))
def test_random_records_after_a_valid_header(body: bytes) -> None:
    decode_all(HEADER + body)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    decode_all(data)
