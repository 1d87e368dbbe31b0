"""Pointer updates, slow-path (2.2.9.1.1.4) and fast-path (2.2.9.1.2.1.4 - .11), to events.

aardwolf 0.2.16 parses no slow-path pointer PDU and reads the two mask
lengths of a colour pointer the wrong way round, so the layouts are read here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lucid_recorder.rdp.errors import ProtocolError
from lucid_recorder.rdp.events import Pointer, PointerKind, PointerShape

# Slow-path messageType values.
PTRMSGTYPE_SYSTEM = 0x0001
PTRMSGTYPE_POSITION = 0x0003
PTRMSGTYPE_COLOR = 0x0006
PTRMSGTYPE_CACHED = 0x0007
PTRMSGTYPE_POINTER = 0x0008
PTRMSGTYPE_LARGE = 0x0009
SYSPTR_NULL = 0x00000000
SYSPTR_DEFAULT = 0x00007F00

# Fast-path updateCode values.
FP_PTR_NULL = 0x5
FP_PTR_DEFAULT = 0x6
FP_PTR_POSITION = 0x8
FP_COLOR = 0x9
FP_CACHED = 0xA
FP_POINTER = 0xB
FP_LARGE_POINTER = 0xC
FASTPATH_POINTER_CODES = frozenset(
    {FP_PTR_NULL, FP_PTR_DEFAULT, FP_PTR_POSITION, FP_COLOR, FP_CACHED, FP_POINTER,
     FP_LARGE_POINTER}
)

# Large pointers are at most 384 x 384 (2.2.9.1.2.1.11); the cache holds as
# many shapes as the client's Pointer Capability Set offers (settings.py).
MAX_POINTER_SIDE = 384
POINTER_CACHE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Shape:
    hotspot_x: int
    hotspot_y: int
    width: int
    height: int
    rgba: bytes


def _row_bytes(width: int, bpp: int) -> int:
    """Mask scanlines are padded to a multiple of 2 bytes (2.2.9.1.1.4.4)."""
    return ((width * bpp + 15) // 16) * 2


def decode_shape(xor_bpp: int, hotspot: tuple[int, int], width: int, height: int,
                 xor_mask: bytes, and_mask: bytes) -> Shape:
    """XOR and AND masks (bottom-up) to top-down RGBA.

    Where the AND bit is set over a black XOR pixel the pointer is
    transparent; over any other colour Windows inverts the screen, which an
    RGBA image cannot say: such pixels are kept opaque in their XOR colour.
    """
    if width == 0 or height == 0:
        return Shape(hotspot[0], hotspot[1], 0, 0, b"")
    if width > MAX_POINTER_SIDE or height > MAX_POINTER_SIDE:
        raise ProtocolError(f"pointer of {width}x{height}, larger than "
                            f"{MAX_POINTER_SIDE}x{MAX_POINTER_SIDE}")
    if not (0 <= hotspot[0] < width and 0 <= hotspot[1] < height):
        raise ProtocolError(f"pointer hotspot {hotspot} outside its {width}x{height} shape")
    if xor_bpp not in (1, 15, 16, 24, 32):
        raise ProtocolError(f"pointer with unsupported xorBpp {xor_bpp}")
    xor_stride = _row_bytes(width, xor_bpp)
    and_stride = _row_bytes(width, 1)
    if len(xor_mask) < xor_stride * height:
        raise ProtocolError(f"pointer XOR mask has {len(xor_mask)} bytes, "
                            f"need {xor_stride * height}")
    has_and = len(and_mask) >= and_stride * height
    use_alpha = xor_bpp == 32 and any(xor_mask[i + 3] for i in range(0, xor_stride * height, 4))
    out = bytearray(width * height * 4)
    for row in range(height):
        xor_row = xor_mask[(height - 1 - row) * xor_stride:]
        and_row = and_mask[(height - 1 - row) * and_stride:] if has_and else b""
        for col in range(width):
            r, g, b, a = _xor_pixel(xor_bpp, xor_row, col)
            and_bit = bool(and_row[col >> 3] & (0x80 >> (col & 7))) if has_and else False
            if not use_alpha:
                a = 0 if and_bit and (r, g, b) == (0, 0, 0) else 0xFF
            out[(row * width + col) * 4:(row * width + col + 1) * 4] = bytes((r, g, b, a))
    return Shape(hotspot[0], hotspot[1], width, height, bytes(out))


def _xor_pixel(bpp: int, row: bytes, col: int) -> tuple[int, int, int, int]:
    if bpp == 32:
        b, g, r, a = row[col * 4:col * 4 + 4]
        return r, g, b, a
    if bpp == 24:
        b, g, r = row[col * 3:col * 3 + 3]
        return r, g, b, 0xFF
    if bpp in (15, 16):
        value = row[col * 2] | row[col * 2 + 1] << 8
        if bpp == 16:
            r, g, b = value >> 11 & 0x1F, value >> 5 & 0x3F, value & 0x1F
            return r << 3 | r >> 2, g << 2 | g >> 4, b << 3 | b >> 2, 0xFF
        r, g, b = value >> 10 & 0x1F, value >> 5 & 0x1F, value & 0x1F
        return r << 3 | r >> 2, g << 3 | g >> 2, b << 3 | b >> 2, 0xFF
    level = 0xFF if row[col >> 3] & (0x80 >> (col & 7)) else 0
    return level, level, level, 0xFF


def _color_pointer(data: bytes, xor_bpp: int, large: bool = False) -> tuple[int, Shape]:
    """TS_COLORPOINTERATTRIBUTE / TS_LARGEPOINTERATTRIBUTE (after xorBpp): (cacheIndex, shape)."""
    try:
        if large:
            cache_index, hx, hy, width, height, len_and, len_xor = struct.unpack_from(
                "<HHHHHII", data)
            offset = 18
        else:
            cache_index, hx, hy, width, height, len_and, len_xor = struct.unpack_from(
                "<HHHHHHH", data)
            offset = 14
    except struct.error as exc:
        raise ProtocolError("truncated colour pointer update") from exc
    xor_mask = data[offset:offset + len_xor]
    and_mask = data[offset + len_xor:offset + len_xor + len_and]
    if len(xor_mask) != len_xor or len(and_mask) != len_and:
        raise ProtocolError("colour pointer masks run past the end of the update")
    return cache_index, decode_shape(xor_bpp, (hx, hy), width, height, xor_mask, and_mask)


class PointerTracker:
    """Turns pointer updates into events, keeping the pointer cache."""

    def __init__(self) -> None:
        self._cache: dict[int, Shape] = {}

    def slow_path(self, t_ns: int, body: bytes) -> Pointer | PointerShape | None:
        if len(body) < 4:
            raise ProtocolError("truncated Pointer Update PDU")
        message_type = struct.unpack_from("<H", body)[0]
        data = body[4:]
        if message_type == PTRMSGTYPE_SYSTEM:
            if len(data) < 4:
                raise ProtocolError("truncated system pointer update")
            system = struct.unpack_from("<I", data)[0]
            code = FP_PTR_NULL if system == SYSPTR_NULL else FP_PTR_DEFAULT
            return self.fast_path(t_ns, code, b"")
        codes = {PTRMSGTYPE_POSITION: FP_PTR_POSITION, PTRMSGTYPE_COLOR: FP_COLOR,
                 PTRMSGTYPE_CACHED: FP_CACHED, PTRMSGTYPE_POINTER: FP_POINTER,
                 PTRMSGTYPE_LARGE: FP_LARGE_POINTER}
        if message_type not in codes:
            raise ProtocolError(f"unknown pointer messageType {message_type:#x}")
        return self.fast_path(t_ns, codes[message_type], data)

    def fast_path(self, t_ns: int, code: int, data: bytes) -> Pointer | PointerShape | None:
        if code == FP_PTR_NULL:
            return PointerShape(t_ns, PointerKind.HIDDEN)
        if code == FP_PTR_DEFAULT:
            return PointerShape(t_ns, PointerKind.DEFAULT)
        if code == FP_PTR_POSITION:
            if len(data) < 4:
                raise ProtocolError("truncated pointer position update")
            x, y = struct.unpack_from("<HH", data)
            return Pointer(t_ns, x, y)
        if code == FP_CACHED:
            if len(data) < 2:
                raise ProtocolError("truncated cached pointer update")
            index = struct.unpack_from("<H", data)[0]
            shape = self._cache.get(index)
            if shape is None:
                raise ProtocolError(f"cached pointer {index} was never sent")
            return self._event(t_ns, shape)
        if code == FP_COLOR:
            index, shape = _color_pointer(data, 24)
        elif code in (FP_POINTER, FP_LARGE_POINTER):
            if len(data) < 2:
                raise ProtocolError("truncated pointer update")
            xor_bpp = struct.unpack_from("<H", data)[0]
            index, shape = _color_pointer(data[2:], xor_bpp, large=code == FP_LARGE_POINTER)
        else:
            raise ProtocolError(f"unknown fast-path pointer update code {code:#x}")
        if index >= POINTER_CACHE_SIZE:
            raise ProtocolError(f"pointer cache index {index}, but the cache holds "
                                f"{POINTER_CACHE_SIZE}")
        self._cache[index] = shape
        return self._event(t_ns, shape)

    @staticmethod
    def _event(t_ns: int, shape: Shape) -> PointerShape:
        if shape.width == 0:
            return PointerShape(t_ns, PointerKind.HIDDEN)
        return PointerShape(t_ns, PointerKind.BITMAP, shape.hotspot_x, shape.hotspot_y,
                            shape.width, shape.height, shape.rgba)
