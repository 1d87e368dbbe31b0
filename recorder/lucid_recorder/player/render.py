"""Pictures of a recording: single frames and contact sheets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from . import text
from .timeline import Recording

LABEL_HEIGHT = 18
PAD = 6
BACKGROUND = (32, 32, 32)


@dataclass(frozen=True, slots=True)
class SheetLayout:
    columns: int
    rows: int
    thumb_width: int
    thumb_height: int

    @property
    def size(self) -> tuple[int, int]:
        return (PAD + self.columns * (self.thumb_width + PAD),
                PAD + self.rows * (self.thumb_height + LABEL_HEIGHT + PAD))

    def cell(self, i: int) -> tuple[int, int]:
        row, col = divmod(i, self.columns)
        return (PAD + col * (self.thumb_width + PAD),
                PAD + row * (self.thumb_height + LABEL_HEIGHT + PAD))


def sheet_layout(width: int, height: int, count: int, columns: int,
                 thumb_width: int) -> SheetLayout:
    columns = min(columns, count)
    thumb_height = max(1, round(thumb_width * height / width))
    return SheetLayout(columns, math.ceil(count / columns), thumb_width, thumb_height)


def sample_times(start_ns: int, end_ns: int, count: int) -> list[int]:
    """`count` times from the first to the last moment, evenly spaced (ends included)."""
    if count == 1:
        return [start_ns]
    step = (end_ns - start_ns) / (count - 1)
    return [start_ns + round(i * step) for i in range(count)]


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale into a width x height box, letterboxed: a resized desktop keeps its aspect."""
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    scaled = image.resize(size, Image.Resampling.LANCZOS) if size != image.size else image
    if scaled.size == (width, height):
        return scaled
    box = Image.new("RGB", (width, height), BACKGROUND)
    box.paste(scaled, ((width - size[0]) // 2, (height - size[1]) // 2))
    return box


def contact_sheet(recording: Recording, *, count: int, columns: int, thumb_width: int,
                  with_pointer: bool = False) -> Image.Image:
    layout = sheet_layout(recording.width, recording.height, count, columns, thumb_width)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _label_font()
    times = sample_times(recording.start_ns, recording.end_ns, count)
    lost = recording.missing_spans()
    for i, (t, fb) in enumerate(recording.frames_at(times)):
        x, y = layout.cell(i)
        sheet.paste(fit(fb.to_image(with_pointer=with_pointer), layout.thumb_width,
                        layout.thumb_height), (x, y))
        label = text.offset(t, decimals=1)
        clock = text.wallclock(recording.session_start_unix_ns, t)
        if clock:
            label += f"  {clock[11:19]}Z"
        if any(span.start_ns < t < span.end_ns for span in lost):
            label += "  (lost)"
        draw.text((x + 2, y + layout.thumb_height + 3), label, font=font, fill=(230, 230, 230))
    return sheet


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=12)
    except (OSError, ValueError, TypeError):
        return ImageFont.load_default()
