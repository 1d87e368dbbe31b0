"""Bitmap update rectangles to exact RGB24 pixels.

Compressed 16 bpp (interleaved RLE) and 32 bpp (RDP 6.0 planar, RLE) bitmaps
go through aardwolf's native decoder. Decoded here instead: 24 bpp RLE
(rle.py), raw planar 32 bpp, and uncompressed bitmaps, which the native
decoder rejects (24 bpp) or passes through without turning the bottom-up
rows over (32 bpp).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType

from aardwolf import _rle
from PIL import Image

from lucid_recorder import native
from lucid_recorder.rdp import rle
from lucid_recorder.rdp.errors import BitmapDecodeError
from lucid_recorder.rdp.wire import BitmapData

# PIL raw modes of uncompressed bitmap rows (2.2.9.1.1.3.1.2.2): little-endian
# pixels, bottom-up rows, each row padded to a multiple of 4 bytes.
_UNCOMPRESSED_MODES = {16: ("BGR;16", 2), 24: ("BGR", 3), 32: ("BGRX", 4)}
# RDP 6.0 planar codec ([MS-RDPEGDI] 2.2.2.5.1) format header bits.
PLANAR_CLL_MASK = 0x07
PLANAR_CS = 0x08
PLANAR_RLE = 0x10
PLANAR_NA = 0x20
# PIL raw modes of what the native decoder returns, 4 bytes per pixel,
# top-down. At 16 bpp it expands 5-6-5 to R, G, B, 0xFF. At 32 bpp it copies
# the planar codec's output, which is B, G, R, A as in every 32 bpp RDP
# pixel, while labelling it RGBA: read as RGBA, red and blue swap places.
_NATIVE_MODES = {16: "RGBX", 32: "BGRX"}
_PIXEL32_MODE = "BGRX" if sys.byteorder == "little" else "XRGB"


@dataclass(frozen=True, slots=True)
class DecodedRect:
    x: int
    y: int
    w: int
    h: int
    rgb: bytes


def destination_size(bitmap: BitmapData) -> tuple[int, int]:
    """Width and height of the destination rectangle (its right/bottom are inclusive)."""
    return bitmap.dest_right - bitmap.dest_left + 1, bitmap.dest_bottom - bitmap.dest_top + 1


def decode_bitmap(bitmap: BitmapData) -> DecodedRect:
    """Decode one rectangle and crop it to its destination.

    Fix 8: the pixels are decoded at the bitmap's own width x height, which
    servers pad (xrdp to a multiple of 4 pixels, and to 64 x 64 tiles), and
    then cropped to the destination rectangle. aardwolf 0.2.16 decodes at
    the destination size, and RLE streams of padded bitmaps then overrun it.
    """
    dest_w, dest_h = destination_size(bitmap)
    if dest_w <= 0 or dest_h <= 0:
        raise BitmapDecodeError(f"empty destination rectangle in {_describe(bitmap)}")
    if dest_w > bitmap.width or dest_h > bitmap.height:
        raise BitmapDecodeError(f"destination larger than the bitmap in {_describe(bitmap)}")
    if native.core is not None:
        rgb = _decode_native(native.core, bitmap, dest_w, dest_h)
        if rgb is not None:
            return DecodedRect(bitmap.dest_left, bitmap.dest_top, dest_w, dest_h, rgb)
    image = _decode_full(bitmap)
    if (dest_w, dest_h) != (bitmap.width, bitmap.height):
        image = image.crop((0, 0, dest_w, dest_h))
    return DecodedRect(bitmap.dest_left, bitmap.dest_top, dest_w, dest_h, image.tobytes())


def _decode_native(core: ModuleType, bitmap: BitmapData, dest_w: int,
                   dest_h: int) -> bytes | None:
    """The compressed cases in the native core; None leaves the bitmap to _decode_full.

    Same results as _decode_full and the crop (the tests compare them): 24 bpp RLE is
    decoded natively, 16/32 bpp still by aardwolf's decoder, with the conversion of its
    output to cropped RGB24 done natively instead of by PIL.
    """
    if not bitmap.compressed:
        return None
    if bitmap.bpp == 24:
        try:
            return bytes(core.rle24_to_rgb(bitmap.data, bitmap.width, bitmap.height, dest_w,
                                           dest_h))
        except ValueError as exc:
            # The reference (rle.decompress) raises with the same text.
            raise BitmapDecodeError(str(exc)) from exc
    raw_planar = bitmap.bpp == 32 and bitmap.data[:1] and not bitmap.data[0] & PLANAR_RLE
    if bitmap.bpp not in _NATIVE_MODES or raw_planar:
        return None
    raw = _aardwolf_decode(bitmap)
    return bytes(core.rgbx_to_rgb(raw, bitmap.width, bitmap.height, dest_w, dest_h,
                                  bitmap.bpp == 32))


def _aardwolf_decode(bitmap: BitmapData) -> bytes:
    try:
        raw = bytes(_rle.bitmap_decompress(bitmap.data, bitmap.width, bitmap.height,
                                           bitmap.bpp, 1))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise BitmapDecodeError(f"{exc} in {_describe(bitmap)}") from exc
    except BaseException as exc:
        # A Rust panic in the decoder (an index past a truncated stream)
        # arrives as pyo3's PanicException, which derives from BaseException.
        if type(exc).__name__ != "PanicException":
            raise
        raise BitmapDecodeError(f"native decoder panicked ({exc}) in {_describe(bitmap)}") from exc
    need = bitmap.width * bitmap.height * 4
    if len(raw) != need:
        raise BitmapDecodeError(f"decoder gave {len(raw)} bytes, need {need}, in "
                                f"{_describe(bitmap)}")
    return raw


def _decode_full(bitmap: BitmapData) -> Image.Image:
    size = (bitmap.width, bitmap.height)
    if not bitmap.compressed:
        layout = _UNCOMPRESSED_MODES.get(bitmap.bpp)
        if layout is None:
            raise BitmapDecodeError(f"unsupported uncompressed depth in {_describe(bitmap)}")
        mode, pixel_bytes = layout
        stride = (bitmap.width * pixel_bytes + 3) & ~3
        if len(bitmap.data) < stride * bitmap.height:
            raise BitmapDecodeError(
                f"{len(bitmap.data)} bytes of pixels, need {stride * bitmap.height}, "
                f"in {_describe(bitmap)}"
            )
        # Orientation -1: the first row in the data is the bottom row.
        return Image.frombytes("RGB", size, bitmap.data, "raw", mode, stride, -1)
    if bitmap.bpp == 32 and bitmap.data[:1] and not bitmap.data[0] & PLANAR_RLE:
        return _planar_raw(bitmap)
    if bitmap.bpp == 24:
        pixels = rle.decompress(bitmap.data, bitmap.width, bitmap.height, 3)
        # Native-endian 32-bit values 0x00RRGGBB; bottom row first.
        return Image.frombytes("RGB", size, pixels.tobytes(), "raw", _PIXEL32_MODE, 0, -1)
    mode = _NATIVE_MODES.get(bitmap.bpp)
    if mode is None:
        raise BitmapDecodeError(f"unsupported compressed depth in {_describe(bitmap)}")
    raw = _aardwolf_decode(bitmap)
    return Image.frombytes("RGB", size, raw, "raw", mode, 0, 1)


def _planar_raw(bitmap: BitmapData) -> Image.Image:
    """A planar bitmap whose planes are stored without RLE, which the native decoder rejects.

    xrdp sends these for small 32 bpp bitmaps where RLE would not shrink
    them: a format header, then the alpha plane (absent with NA), red, green
    and blue, each width x height bytes, bottom row first.
    """
    header = bitmap.data[0]
    if header & (PLANAR_CS | PLANAR_CLL_MASK):
        raise BitmapDecodeError(f"lossy planar bitmap (header {header:#04x}), never allowed, in "
                                f"{_describe(bitmap)}")
    size = bitmap.width * bitmap.height
    offset = 1 if header & PLANAR_NA else 1 + size
    if len(bitmap.data) < offset + 3 * size:
        raise BitmapDecodeError(f"raw planes need {offset + 3 * size} bytes in {_describe(bitmap)}")
    planes = [Image.frombytes("L", (bitmap.width, bitmap.height),
                              bitmap.data[offset + i * size:offset + (i + 1) * size])
              for i in range(3)]
    return Image.merge("RGB", planes).transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def _describe(bitmap: BitmapData) -> str:
    return (f"bitmap {bitmap.width}x{bitmap.height} at {bitmap.bpp} bpp for "
            f"({bitmap.dest_left},{bitmap.dest_top})-({bitmap.dest_right},{bitmap.dest_bottom}), "
            f"{'compressed' if bitmap.compressed else 'raw'}, {len(bitmap.data)} bytes")
