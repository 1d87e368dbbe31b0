"""The desktop as the recording describes it: what the encoder diffs against, the player shows."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from .. import native
from .records import (
    MAX_DIMENSION,
    DesktopResize,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Record,
    Rect,
)


def check_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise ValueError(f"desktop size {width}x{height} outside 1..{MAX_DIMENSION}")


@dataclass(slots=True)
class PointerState:
    x: int = 0
    y: int = 0
    shape: PointerShape | PointerDefault | None = None  # None: hidden or never set


def default_arrow() -> PointerShape:
    """What the player draws for PointerDefault: a plain 12x19 arrow, hotspot at its tip."""
    w, h = 12, 19
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(image).polygon(
        [(0, 0), (0, 16), (4, 12), (7, 18), (9, 17), (6, 11), (11, 11)],
        fill=(255, 255, 255, 255), outline=(0, 0, 0, 255))
    return PointerShape(w, h, 0, 0, image.tobytes())


class Framebuffer:
    """RGB24 pixels plus pointer state; starts black, like an RDP session before its first paint."""

    __slots__ = ("height", "pixels", "pointer", "width")

    def __init__(self, width: int, height: int) -> None:
        check_size(width, height)
        self.width = width
        self.height = height
        self.pixels = bytearray(width * height * 3)
        self.pointer = PointerState()

    def copy(self) -> Framebuffer:
        other = Framebuffer.__new__(Framebuffer)
        other.width = self.width
        other.height = self.height
        other.pixels = bytearray(self.pixels)
        other.pointer = PointerState(self.pointer.x, self.pointer.y, self.pointer.shape)
        return other

    def contains(self, x: int, y: int, width: int, height: int) -> bool:
        return (
            width > 0
            and height > 0
            and x >= 0
            and y >= 0
            and x + width <= self.width
            and y + height <= self.height
        )

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        """The current pixels of a rectangle, row-major RGB24."""
        core = native.core
        if core is not None and self.contains(x, y, width, height):
            return bytes(core.region(self.pixels, self.width, self.height, x, y, width, height))
        stride = self.width * 3
        row = width * 3
        start = (y * self.width + x) * 3
        px = self.pixels
        return b"".join(px[o : o + row] for o in range(start, start + height * stride, stride))

    def region_except_rows(self, x: int, y: int, width: int, height: int, first: int,
                           rows: int) -> bytes:
        """A rectangle's current pixels without its rows first..first+rows-1 (what a
        COPY_RECT's payload holds)."""
        above = self.region(x, y, width, first) if first else b""
        below = height - first - rows
        return above + (self.region(x, y + first + rows, width, below) if below else b"")

    def paste(self, x: int, y: int, width: int, height: int, rgb: bytes | memoryview) -> None:
        if not self.contains(x, y, width, height):
            raise ValueError(f"rect {width}x{height}+{x}+{y} outside {self.width}x{self.height}")
        if len(rgb) != width * height * 3:
            raise ValueError(f"rect {width}x{height} needs {width * height * 3} bytes, "
                             f"got {len(rgb)}")
        core = native.core
        if core is not None:
            core.paste(self.pixels, self.width, self.height, x, y, width, height, bytes(rgb))
            return
        stride = self.width * 3
        row = width * 3
        if x == 0 and width == self.width:
            start = y * stride
            self.pixels[start : start + height * stride] = rgb
            return
        dst = (y * self.width + x) * 3
        for src in range(0, height * row, row):
            self.pixels[dst : dst + row] = rgb[src : src + row]
            dst += stride

    def resize(self, width: int, height: int) -> None:
        """Keep the overlapping top-left area; new area is black."""
        check_size(width, height)
        old = self
        new = bytearray(width * height * 3)
        keep_w = min(width, old.width) * 3
        for y in range(min(height, old.height)):
            src = y * old.width * 3
            dst = y * width * 3
            new[dst : dst + keep_w] = old.pixels[src : src + keep_w]
        self.width = width
        self.height = height
        self.pixels = new

    def apply(self, record: Record) -> None:
        """Change the framebuffer as `record` says; markers other than resize change nothing."""
        if isinstance(record, Rect):
            self.paste(record.x, record.y, record.width, record.height, record.rgb)
        elif isinstance(record, Keyframe):
            if (record.width, record.height) != (self.width, self.height):
                self.resize(record.width, record.height)
            if len(record.rgb) != len(self.pixels):
                raise ValueError("keyframe pixel length does not match its size")
            self.pixels[:] = record.rgb
        elif isinstance(record, DesktopResize):
            self.resize(record.width, record.height)
        elif isinstance(record, Pointer):
            self.pointer.x, self.pointer.y = record.x, record.y
        elif isinstance(record, PointerShape):
            self.pointer.shape = record if record.width and record.height else None
        elif isinstance(record, PointerDefault):
            self.pointer.shape = record

    def to_image(self, *, with_pointer: bool = False) -> Image.Image:
        image = Image.frombytes("RGB", (self.width, self.height), bytes(self.pixels))
        shape = self.pointer.shape
        if isinstance(shape, PointerDefault):
            shape = default_arrow()
        if with_pointer and shape is not None:
            cursor = Image.frombytes("RGBA", (shape.width, shape.height), shape.rgba)
            at = (self.pointer.x - shape.hotspot_x, self.pointer.y - shape.hotspot_y)
            image.paste(cursor, at, cursor)
        return image
