"""How the writer lays out pixels, chosen per rectangle (docs/format.md has the measurements).

Flat UI content (text, title bars, few colours) compresses best interleaved: a pixel is
one 3-byte symbol that zstd matches against glyphs and tiles seen earlier. Photo-like
content compresses best planar, where each channel is a smooth signal. XOR against the
previous pixels of the same rectangle wins for photo-like content that mostly did not
change (a window dragged over a wallpaper), and loses for text, where it turns a repeated
glyph into new bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import native
from .pixels import to_planar, xor_bytes

# Sampling bounds the cost per rectangle; 1024 samples see a 64x64 tile in full.
_SAMPLES = 1024
# More distinct colours than this among the samples means photo-like content.
_PHOTO_COLOURS = 256


@dataclass(frozen=True, slots=True)
class Layout:
    planar: bool = False
    xor: bool = False
    # Keyframes only, with planar (pixels.predict_planar; format version 2).
    predicted: bool = False


INTERLEAVED = Layout()
PLANAR = Layout(planar=True)
XOR_INTERLEAVED = Layout(xor=True)
XOR_PLANAR = Layout(planar=True, xor=True)
PREDICTED_PLANAR = Layout(planar=True, predicted=True)
_LAYOUTS = {(layout.planar, layout.xor): layout
            for layout in (INTERLEAVED, PLANAR, XOR_INTERLEAVED, XOR_PLANAR)}

# (new pixels, previous pixels of the same area or None for keyframes) -> layout
LayoutPolicy = Callable[[bytes, bytes | None], Layout]


def distinct_colours(rgb: bytes, limit: int = _SAMPLES) -> int:
    pixels = len(rgb) // 3
    step = max(1, pixels // limit) * 3
    return len({rgb[i : i + 3] for i in range(0, pixels * 3, step)})


def adaptive_layout(rgb: bytes, previous: bytes | None) -> Layout:
    core = native.core
    if core is not None:
        planar, xor = core.adaptive_layout(rgb, previous)
        return _LAYOUTS[planar, xor]
    return adaptive_layout_reference(rgb, previous)


def predicted_keyframes(rgb: bytes, previous: bytes | None) -> Layout:
    """The adaptive layout, with every keyframe predicted planar (format version 2).

    Not the writer's default: measured on the real-workload corpus (bench.levers), it
    stores keyframes 18-47 % smaller and the office workload 23 % smaller, but the browser
    workload 25 % larger, because zstd no longer finds the later rectangles' pixels in the
    chunk's keyframe (docs/format.md, version 2).
    """
    if previous is None:
        return PREDICTED_PLANAR
    return adaptive_layout(rgb, previous)


def adaptive_layout_reference(rgb: bytes, previous: bytes | None) -> Layout:
    """The definition of the adaptive layout; lucid_native.adaptive_layout matches it."""
    if distinct_colours(rgb) <= _PHOTO_COLOURS:
        return INTERLEAVED
    if previous is not None:
        # Mostly-unchanged bytes: the XOR is mostly zeros.
        if xor_bytes(rgb, previous).count(0) * 2 >= len(rgb):
            return XOR_PLANAR
    return PLANAR


def fixed_layout(layout: Layout) -> LayoutPolicy:
    """A policy that always answers `layout` (keyframes never XOR: nothing precedes them)."""
    def policy(rgb: bytes, previous: bytes | None) -> Layout:
        if previous is None:
            return Layout(planar=layout.planar)
        return layout
    return policy


def encode_pixels(rgb: bytes, previous: bytes | None, layout: Layout) -> bytes:
    core = native.core
    if core is not None:
        return bytes(core.encode_pixels(rgb, previous, layout.planar, layout.xor))
    return encode_pixels_reference(rgb, previous, layout)


def encode_pixels_reference(rgb: bytes, previous: bytes | None, layout: Layout) -> bytes:
    data = xor_bytes(rgb, previous) if layout.xor and previous is not None else rgb
    return to_planar(data) if layout.planar else data
