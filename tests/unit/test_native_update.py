"""lucid_native.bitmap_update against the reference it replaces, update for update.

The reference: wire.parse_bitmap_update, UpdateDecoder.check_bounds and
bitmap.decode_bitmap without the native core (aardwolf's decoder for 32 bpp planar RLE,
rle.py and PIL for 24 bpp). Where the native call decodes an update, the rectangles and
the bitmap byte count must be the reference's; where the reference fails, the native call
must decline (None), so that the reference runs and raises its own error.
"""

from __future__ import annotations

import importlib
import random
import struct
from types import ModuleType, SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucid_recorder import native
from lucid_recorder.rdp import bitmap as bitmap_module
from lucid_recorder.rdp import wire
from lucid_recorder.rdp.errors import CaptureError
from lucid_recorder.rdp.updates import BITMAP_PADDING, PENDING_BYTES, UpdateDecoder
from tests.rdp_peer import records

PROPERTY = settings(max_examples=400, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
DESKTOP = (1024, 768)
FIXTURES = ("xrdp_update_padded_16.bin", "xrdp_update_padded_32.bin",
            "xrdp_update_24.bin", "xrdp_login_screen_32.bin")

Result = tuple[list[tuple[int, int, int, int, bytes]], int] | None


@pytest.fixture(scope="module")
def core() -> ModuleType:
    return importlib.import_module("lucid_native")


def reference(body: bytes, desktop: tuple[int, int] = DESKTOP) -> Result:
    """What graphics_update makes of `body` without the native core; None if it raises."""
    saved, native.core = native.core, None
    try:
        bitmaps = wire.parse_bitmap_update(body)
        decoder = SimpleNamespace(desktop=desktop)
        rects, nbytes = [], 0
        for bitmap in bitmaps:
            nbytes += len(bitmap.data)
            UpdateDecoder.check_bounds(decoder, bitmap)  # type: ignore[arg-type]
            rect = bitmap_module.decode_bitmap(bitmap)
            rects.append((rect.x, rect.y, rect.w, rect.h, rect.rgb))
        return rects, nbytes
    except CaptureError:
        return None
    finally:
        native.core = saved


def fused(core: ModuleType, body: bytes, desktop: tuple[int, int] = DESKTOP,
          max_bytes: int = PENDING_BYTES) -> Result:
    out = core.bitmap_update(body, desktop[0], desktop[1], BITMAP_PADDING, max_bytes)
    if out is None:
        return None
    rects, nbytes = out
    return [(x, y, w, h, bytes(rgb)) for x, y, w, h, rgb in rects], nbytes


def fixture_updates() -> list[tuple[str, bytes]]:
    out = []
    for name in FIXTURES:
        for _kind, data in records(name):
            for pdu in wire.iter_share_pdus(data):
                if (pdu.pdu_type2 == wire.PDUTYPE2_UPDATE
                        and struct.unpack_from("<H", pdu.body)[0] == wire.UPDATETYPE_BITMAP):
                    out.append((name, pdu.body))
    return out


UPDATES = fixture_updates()


def _planar_only(body: bytes) -> bool:
    """Every rectangle 24 bpp RLE or 32 bpp planar RLE: what the native call decodes."""
    return all(b.compressed and (b.bpp == 24 or (b.bpp == 32 and b.data[:1] == b"\x10"))
               for b in wire.parse_bitmap_update(body))


@pytest.mark.parametrize("index", range(len(UPDATES)))
def test_fixture_updates_decode_as_the_reference(index: int, core: ModuleType) -> None:
    name, body = UPDATES[index]
    expected = reference(body)
    assert expected is not None, f"the reference fails on a fixture update of {name}"
    got = fused(core, body)
    if _planar_only(body):
        assert got == expected  # the fast path itself, not a decline
    else:
        assert got is None  # 16 bpp, raw planar: left to the reference


def test_the_fixtures_reach_the_fast_path_at_24_and_32_bpp() -> None:
    depths = {b.bpp for _name, body in UPDATES if _planar_only(body)
              for b in wire.parse_bitmap_update(body)}
    assert {24, 32} <= depths


@PROPERTY
@given(st.data())
def test_damaged_updates_decode_as_the_reference_or_decline(data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    _name, body = data.draw(st.sampled_from(UPDATES))
    raw = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    damaged = bytes(raw[:data.draw(st.integers(1, len(raw)))])
    got = fused(core, damaged)
    if got is not None:
        assert got == reference(damaged)


def _plane_rows(rng: random.Random, width: int, height: int, overrun: bool) -> bytes:
    """Control bytes and raw values for one plane: runs that fill each row, or now and
    then overrun it (which aardwolf lets spill into the next lines)."""
    out = bytearray()
    for _ in range(height):
        left = width
        while left > 0:
            spill = overrun and rng.random() < 0.03
            if rng.random() < 0.3:
                extra = rng.randrange(16)
                long_run = rng.choice((1, 2))
                count = (long_run << 4) | extra
                if count > left and not spill:
                    continue
                out.append((extra << 4) | long_run)
                left -= count
                continue
            raw = rng.randrange(min(15, left) + 1 if not spill else 16)
            run = rng.choice([0, *range(3, 16)])
            if not spill:
                raw = min(raw, left)
                run = 0 if run > left - raw else run
            if raw == 0 and run == 0:
                raw = 1
            out.append((raw << 4) | run)
            out.extend(rng.randrange(256) for _ in range(raw))
            left -= raw + run
    return bytes(out)


def _planar_update(rng: random.Random, overrun: bool) -> bytes:
    width, height = rng.randint(1, 24), rng.randint(1, 12)
    bits = b"\x10" + b"".join(_plane_rows(rng, width, height, overrun) for _ in range(4))
    if rng.random() < 0.1:
        bits = bits[:rng.randrange(1, len(bits))]
    dest_w, dest_h = rng.randint(1, width), rng.randint(1, height)
    x, y = rng.randrange(100), rng.randrange(100)
    flags = 0x0401  # BITMAP_COMPRESSION | NO_BITMAP_COMPRESSION_HDR
    rect = struct.pack("<9H", x, y, x + dest_w - 1, y + dest_h - 1, width, height, 32, flags,
                       len(bits))
    return struct.pack("<HH", wire.UPDATETYPE_BITMAP, 1) + rect + bits


@pytest.mark.parametrize("overrun", [False, True])
def test_random_planar_streams_decode_as_aardwolf(core: ModuleType, overrun: bool) -> None:
    rng = random.Random(15)
    decoded = 0
    for _ in range(3000):
        body = _planar_update(rng, overrun)
        expected = reference(body)
        got = fused(core, body)
        if got is None:
            continue
        assert got == expected
        decoded += 1
    # The comparison ran on real decodes, not only on declines.
    assert decoded > (20 if overrun else 1000)


def test_bounds_and_truncation_decline(core: ModuleType) -> None:
    _name, body = next(u for u in UPDATES if _planar_only(u[1]))
    assert fused(core, body) is not None
    assert fused(core, body, desktop=(8, 8)) is None  # off the desktop: check_bounds raises
    assert reference(body, desktop=(8, 8)) is None
    assert fused(core, body[:-1]) is None  # the last rectangle's bytes are cut
    assert fused(core, b"\x02\x00" + body[2:]) is None  # not a bitmap update
    rects, _nbytes = reference(body) or ([], 0)
    pixels = sum(len(rgb) for *_xywh, rgb in rects)
    assert fused(core, body, max_bytes=pixels) is not None
    assert fused(core, body, max_bytes=pixels - 1) is None  # more pixels than one list holds
