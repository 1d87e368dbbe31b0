"""Pointer updates to PointerShape / Pointer events, on xrdp's pointer PDUs and synthetic ones."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from aardwolf.protocol.fastpath import TS_FP_UPDATE_PDU

from lucid_recorder.rdp.errors import ProtocolError
from lucid_recorder.rdp.events import Pointer, PointerKind, PointerShape
from lucid_recorder.rdp.pointer import (
    FP_CACHED,
    FP_LARGE_POINTER,
    FP_PTR_POSITION,
    PTRMSGTYPE_POSITION,
    PTRMSGTYPE_SYSTEM,
    SYSPTR_DEFAULT,
    SYSPTR_NULL,
    PointerTracker,
    decode_shape,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rdp"


def xrdp_pointer_updates() -> list[tuple[int, bytes]]:
    raw = (DATA / "xrdp_pointers_32.bin").read_bytes()
    updates, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from(">I", raw, offset + 1)
        pdu = TS_FP_UPDATE_PDU.from_bytes(raw[offset + 5:offset + 5 + length])
        updates += [(int(u.updateCode), u.updateData) for u in pdu.fpOutputUpdates]
        offset += 5 + length
    return [(code, data) for code, data in updates if code != 0x3]  # not Synchronize


def pixel(shape: PointerShape, x: int, y: int) -> tuple[int, ...]:
    start = (y * shape.width + x) * 4
    return tuple(shape.rgba[start:start + 4])


def test_xrdp_pointers_decode() -> None:
    tracker = PointerTracker()
    shapes = [tracker.fast_path(n, code, data) for n, (code, data) in
              enumerate(xrdp_pointer_updates())]
    assert all(isinstance(s, PointerShape) and s.kind is PointerKind.BITMAP for s in shapes)
    assert [(s.hotspot_x, s.hotspot_y, s.width, s.height) for s in shapes] == [
        (15, 16, 32, 32), (0, 0, 32, 32), (3, 3, 32, 32)]
    arrow = shapes[1]
    assert len(arrow.rgba) == 32 * 32 * 4
    # The arrow's tip is its hotspot, at the top left: opaque there,
    # transparent at the far corner, so the mask rows were turned the right way up.
    assert pixel(arrow, 0, 0)[3] == 0xFF
    assert pixel(arrow, 31, 31)[3] == 0
    assert pixel(arrow, 0, 31)[3] == 0


def test_cached_pointer_repeats_the_shape() -> None:
    tracker = PointerTracker()
    for n, (code, data) in enumerate(xrdp_pointer_updates()):
        tracker.fast_path(n, code, data)
    # xrdp put the arrow in cache slot 0.
    cached = tracker.fast_path(9, FP_CACHED, struct.pack("<H", 0))
    assert isinstance(cached, PointerShape) and (cached.hotspot_x, cached.hotspot_y) == (0, 0)
    with pytest.raises(ProtocolError, match="never sent"):
        tracker.fast_path(10, FP_CACHED, struct.pack("<H", 7))


def test_slow_path_system_and_position() -> None:
    tracker = PointerTracker()
    hidden = tracker.slow_path(1, struct.pack("<HHI", PTRMSGTYPE_SYSTEM, 0, SYSPTR_NULL))
    default = tracker.slow_path(2, struct.pack("<HHI", PTRMSGTYPE_SYSTEM, 0, SYSPTR_DEFAULT))
    moved = tracker.slow_path(3, struct.pack("<HHHH", PTRMSGTYPE_POSITION, 0, 10, 20))
    assert hidden == PointerShape(1, PointerKind.HIDDEN)
    assert default == PointerShape(2, PointerKind.DEFAULT)
    assert moved == Pointer(3, 10, 20)
    assert tracker.fast_path(4, FP_PTR_POSITION, struct.pack("<HH", 5, 6)) == Pointer(4, 5, 6)


def test_32_bpp_pointer_keeps_its_alpha() -> None:
    # One row, two pixels: opaque red, half-transparent blue (B, G, R, A).
    shape = decode_shape(32, (1, 0), 2, 1, bytes([0, 0, 255, 255, 255, 0, 0, 128]), b"\x00\x00")
    assert shape.rgba == bytes([255, 0, 0, 255, 0, 0, 255, 128])


def test_large_pointer_layout() -> None:
    xor = bytes([0, 0, 0, 255, 255, 255, 0, 0])  # 2x1 at 24 bpp, row padded to 8 bytes
    and_mask = bytes([0x80, 0])  # the first pixel transparent (AND set over black)
    data = struct.pack("<HHHHHHII", 24, 3, 1, 0, 2, 1, len(and_mask), len(xor)) + xor + and_mask
    event = PointerTracker().fast_path(1, FP_LARGE_POINTER, data)
    assert isinstance(event, PointerShape)
    assert event.rgba == bytes([0, 0, 0, 0, 255, 255, 255, 255])


def test_truncated_pointer_is_a_protocol_error() -> None:
    code, data = xrdp_pointer_updates()[0]
    with pytest.raises(ProtocolError):
        PointerTracker().fast_path(1, code, data[:100])
