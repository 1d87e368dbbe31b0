"""lucid_native against the pure-Python reference, byte for byte.

The reference implementations (rdp/rle.py, rdp/bitmap.py with PIL, format/encoding.py,
format/pixels.py, format/framebuffer.py, format/writer.py) define the results; the
extension must give the same bytes, and the same errors, on the xrdp fixtures and on
whatever hypothesis makes up.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lucid_recorder import native
from lucid_recorder.format import Framebuffer, Rect, SegmentWriter, encoding, pixels, read_segment
from lucid_recorder.rdp import bitmap as bitmap_module
from lucid_recorder.rdp import rle, wire
from lucid_recorder.rdp.errors import BitmapDecodeError
from tests.rdp_peer import records

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def core() -> ModuleType:
    # Imported, not skipped when absent: the bootstrap builds the extension.
    return importlib.import_module("lucid_native")


# Every Graphics Update fixture of tests/data/rdp (README.md there): 16, 24 and 32 bpp.
UPDATE_FIXTURES = ("xrdp_update_padded_16.bin", "xrdp_update_padded_32.bin",
                   "xrdp_update_24.bin", "xrdp_login_screen_32.bin")


def fixture_bitmaps() -> list[wire.BitmapData]:
    out: list[wire.BitmapData] = []
    for name in UPDATE_FIXTURES:
        for _kind, data in records(name):
            for pdu in wire.iter_share_pdus(data):
                out.extend(wire.parse_bitmap_update(pdu.body))
    return out


BITMAPS = fixture_bitmaps()


def test_the_fixtures_cover_every_decoder() -> None:
    kinds = {(b.bpp, b.compressed) for b in BITMAPS}
    assert {(16, True), (24, True), (32, True)} <= kinds


def test_the_shim_follows_the_environment() -> None:
    assert native.load("0") is None
    assert native.load("1") is not None
    assert native.load("auto") is not None
    with pytest.raises(ValueError, match="LUCID_NATIVE"):
        native.load("yes")


def _decode(bitmap: wire.BitmapData, core: ModuleType | None,
            monkeypatch: pytest.MonkeyPatch) -> bytes | str:
    monkeypatch.setattr(native, "core", core)
    try:
        return bitmap_module.decode_bitmap(bitmap).rgb
    except BitmapDecodeError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("index", range(len(BITMAPS)))
def test_fixture_bitmaps_decode_the_same(index: int, core: ModuleType,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bitmap = BITMAPS[index]
    reference = _decode(bitmap, None, monkeypatch)
    assert isinstance(reference, bytes)
    assert _decode(bitmap, core, monkeypatch) == reference


@PROPERTY
@given(st.data())
def test_damaged_fixture_bitmaps_fail_or_decode_the_same(data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    bitmap = data.draw(st.sampled_from([b for b in BITMAPS if b.compressed]))
    raw = bytearray(bitmap.data)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    damaged = dataclasses.replace(bitmap, data=bytes(raw[:cut]))
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _decode(damaged, core, monkeypatch) == _decode(damaged, None, monkeypatch)


# Interleaved RLE streams: a header from every order class, then bytes that may or may
# not make sense to it. Both decoders must agree on the pixels or on the error.
_HEADERS = st.one_of(st.integers(0x00, 0xBF), st.integers(0xC0, 0xEF),
                     st.sampled_from([0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
                                      0xF9, 0xFA, 0xFB, 0xFD, 0xFE, 0xFF]))
_ORDER = st.tuples(_HEADERS, st.binary(max_size=12))


def _reference_rle(stream: bytes, w: int, h: int, size: int) -> bytes | str:
    try:
        return rle.decompress(stream, w, h, size).tobytes()
    except BitmapDecodeError as exc:
        return str(exc)


def _native_rle(core: ModuleType, stream: bytes, w: int, h: int, size: int) -> bytes | str:
    try:
        return bytes(core.rle_decompress(stream, w, h, size))
    except ValueError as exc:
        return str(exc)


@PROPERTY
@given(orders=st.lists(_ORDER, max_size=24), w=st.integers(1, 24), h=st.integers(1, 6),
       size=st.sampled_from([1, 2, 3]))
def test_rle_matches_the_reference(orders: list[tuple[int, bytes]], w: int, h: int,
                                   size: int) -> None:
    core = importlib.import_module("lucid_native")
    stream = b"".join(bytes([header]) + tail for header, tail in orders)
    assert _native_rle(core, stream, w, h, size) == _reference_rle(stream, w, h, size)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_rle_of_whole_fills_matches(core: ModuleType, size: int) -> None:
    # Streams that decode without error: colour runs, fg/bg images, copies of the row above.
    rng = random.Random(size)
    for _ in range(200):
        w = rng.randint(1, 40)
        h = rng.randint(1, 8)
        stream = bytearray()
        left = w * h
        while left:
            n = min(left, rng.randint(1, 31))
            kind = rng.choice(["colour", "image", "bg", "white"])
            if kind == "white":
                stream.append(0xFD)
                n = 1
            elif kind == "bg" and left <= w * h - w:
                stream.append(0x00 | n)
            elif kind == "image":
                stream.append(0x80 | n)
                stream += rng.randbytes(n * size)
            else:
                stream.append(0x60 | n)
                stream += rng.randbytes(size)
            left -= n
        reference = _reference_rle(bytes(stream), w, h, size)
        assert isinstance(reference, bytes), reference
        assert _native_rle(core, bytes(stream), w, h, size) == reference


def test_rle_overrun_is_the_same_error(core: ModuleType) -> None:
    with pytest.raises(ValueError, match="past"):
        core.rle_decompress(bytes([0x1F]), 4, 1, 3)


@PROPERTY
@given(w=st.integers(1, 20), h=st.integers(1, 12), bgr=st.booleans(), data=st.data())
def test_rgbx_conversion_matches_pil(w: int, h: int, bgr: bool, data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    raw = data.draw(st.binary(min_size=w * h * 4, max_size=w * h * 4))
    dw, dh = data.draw(st.integers(1, w)), data.draw(st.integers(1, h))
    image = Image.frombytes("RGB", (w, h), raw, "raw", "BGRX" if bgr else "RGBX", 0, 1)
    expected = image.crop((0, 0, dw, dh)).tobytes()
    assert bytes(core.rgbx_to_rgb(raw, w, h, dw, dh, bgr)) == expected


_PIXELS = st.integers(1, 400).flatmap(
    lambda n: st.one_of(st.binary(min_size=3 * n, max_size=3 * n),
                        st.lists(st.sampled_from([b"\x00\x00\x00", b"\xff\xff\xff",
                                                  b"\x10\x20\x30"]),
                                 min_size=n, max_size=n).map(b"".join)))


@PROPERTY
@given(rgb=_PIXELS, data=st.data())
def test_layout_choice_and_encoding_match(rgb: bytes, data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    previous = data.draw(st.one_of(
        st.none(), st.binary(min_size=len(rgb), max_size=len(rgb)),
        st.just(rgb[: len(rgb) // 2] + bytes(len(rgb) - len(rgb) // 2))))
    limit = data.draw(st.sampled_from([1, 7, 1024]))
    assert core.distinct_colours(rgb, limit) == encoding.distinct_colours(rgb, limit)
    layout = encoding.adaptive_layout_reference(rgb, previous)
    assert core.adaptive_layout(rgb, previous) == (layout.planar, layout.xor)
    for choice in (encoding.INTERLEAVED, encoding.PLANAR, encoding.XOR_INTERLEAVED,
                   encoding.XOR_PLANAR):
        assert (bytes(core.encode_pixels(rgb, previous, choice.planar, choice.xor))
                == encoding.encode_pixels_reference(rgb, previous, choice))
    assert bytes(core.to_planar(rgb)) == pixels.to_planar(rgb)
    if previous is not None:
        assert bytes(core.xor_bytes(rgb, previous)) == pixels.xor_bytes(rgb, previous)


def _random_rect(rng: random.Random, width: int, height: int) -> Rect:
    w, h = rng.randint(1, width), rng.randint(1, height)
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    kind = rng.random()
    if kind < 0.4:
        palette = [rng.randbytes(3) for _ in range(3)]
        rgb = b"".join(rng.choice(palette) for _ in range(w * h))
    elif kind < 0.7:
        rgb = rng.randbytes(w * h * 3)
    else:
        # Mostly what is there already: the XOR layouts.
        noisy = bytearray(rng.randbytes(w * h * 3))
        for i in range(0, len(noisy), 5):
            noisy[i] = 0
        rgb = bytes(noisy)
    return Rect(x, y, w, h, rgb)


def _segment(seed: int, core: ModuleType | None) -> bytes:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(native, "core", core)
        rng = random.Random(seed)
        writer = SegmentWriter(48, 32, 0, keyframe_interval_ns=40)
        for ts in range(1, 120):
            writer.add(ts, _random_rect(rng, 48, 32))
        return writer.finish()


@pytest.mark.parametrize("seed", range(8))
def test_segments_are_byte_identical(core: ModuleType, seed: int) -> None:
    reference = _segment(seed, None)
    assert _segment(seed, core) == reference
    # And they read back (the reader is the same for both).
    assert read_segment(reference).records


@PROPERTY
@given(data=st.data())
def test_framebuffer_region_and_paste_match(data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    width, height = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 20))
    seed = data.draw(st.integers(0, 2**32))
    rng = random.Random(seed)
    frames = {}
    for label, chosen in (("reference", None), ("native", core)):
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(native, "core", chosen)
            rng = random.Random(seed)
            fb = Framebuffer(width, height)
            regions = []
            for _ in range(10):
                rect = _random_rect(rng, width, height)
                fb.paste(rect.x, rect.y, rect.width, rect.height, rect.rgb)
                probe = _random_rect(rng, width, height)
                regions.append(fb.region(probe.x, probe.y, probe.width, probe.height))
            frames[label] = (bytes(fb.pixels), regions)
    assert frames["native"] == frames["reference"]


def test_native_refuses_areas_outside_the_framebuffer(core: ModuleType) -> None:
    pixels_ = bytearray(4 * 3 * 3)
    with pytest.raises(ValueError, match="outside"):
        core.paste(pixels_, 4, 3, 3, 0, 2, 1, bytes(6))
    with pytest.raises(ValueError, match="needs"):
        core.paste(pixels_, 4, 3, 0, 0, 2, 1, bytes(5))
    with pytest.raises(ValueError, match="framebuffer"):
        core.region(pixels_, 5, 3, 0, 0, 1, 1)
