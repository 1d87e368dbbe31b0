"""A deterministic, desktop-like session for tests, demos and the layout study.

It imitates what the recorder sees from xrdp: a flat desktop, a terminal someone types
into, a ticking analog clock, a taskbar clock and now and then a dragged dialog; the
damage is sent as 64x64-aligned tiles (xrdp's bitmap update granularity) or, with
`tiles=False`, as one bounding rectangle per change (closer to a Windows server).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from lucid_recorder.format.framebuffer import default_arrow
from lucid_recorder.format.records import (
    DesktopResize,
    Gap,
    Pointer,
    Rect,
    Start,
    Stop,
    TimedRecord,
)

NS = 1_000_000_000
TILE = 64
# Below this the windows no longer fit on the desktop.
MIN_WIDTH, MIN_HEIGHT = 160, 120

_TYPED = (
    "$ kubectl get recordingsessions -A\n"
    "NAMESPACE   NAME          PHASE       AGE\n"
    "finance     desk-042      Recording   12m\n"
    "ops         jump-7        Completed   3h\n"
    "$ tail -f /var/log/syslog | grep -i rdp\n"
    "Nov 24 10:02:11 host xrdp[812]: connection accepted from 10.0.0.7\n"
    "Nov 24 10:02:12 host xrdp-sesman[790]: starting Xvnc session\n"
    "^C\n$ vi notes.txt\n"
    "The quick brown fox jumps over the lazy dog. 0123456789\n"
    "Pack my box with five dozen liquor jugs!\n"
    "$ make test && echo ok\nok\n$ "
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # The font embedded in Pillow, so renders are identical on every machine.
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ValueError, TypeError):
        return ImageFont.load_default()


@dataclass(frozen=True, slots=True)
class _State:
    second: int
    typed: int
    dialog: tuple[int, int]
    size: tuple[int, int]


class SyntheticDesktop:
    def __init__(self, width: int = 1024, height: int = 768, *, tiles: bool = True,
                 wallpaper: str = "flat") -> None:
        if width < MIN_WIDTH or height < MIN_HEIGHT:
            raise ValueError(f"synthetic desktop needs at least {MIN_WIDTH}x{MIN_HEIGHT}")
        if wallpaper not in ("flat", "photo"):
            raise ValueError(f"unknown wallpaper {wallpaper!r}")
        self.width = width
        self.height = height
        self.tiles = tiles
        self.wallpaper = wallpaper
        self._wallpapers: dict[tuple[int, int], Image.Image] = {}
        self.font = _font(13)
        self.small = _font(11)

    # -- scene ---------------------------------------------------------------

    def _dialog_pos(self, t: float) -> tuple[int, int]:
        # Every 15 s the dialog is dragged for 2 s from one corner area to another.
        w, h = self.width, self.height
        phase = t % 15.0
        a = (w // 8, h // 2)
        b = (w // 2, h // 6)
        if (t // 15) % 2:
            a, b = b, a
        if phase < 6.0:
            return a
        if phase >= 8.0:
            return b
        f = (phase - 6.0) / 2.0
        return (round(a[0] + (b[0] - a[0]) * f), round(a[1] + (b[1] - a[1]) * f))

    def state(self, t: float) -> _State:
        return _State(int(t), int(t * 12) % (len(_TYPED) + 1), self._dialog_pos(t),
                      (self.width, self.height))

    def render(self, s: _State) -> Image.Image:
        w, h = s.size
        image = self._background(w, h)
        draw = ImageDraw.Draw(image)
        # Taskbar with a digital clock.
        bar = 28
        draw.rectangle([0, h - bar, w, h], fill=(192, 192, 192))
        draw.line([0, h - bar, w, h - bar], fill=(255, 255, 255))
        draw.rectangle([2, h - bar + 3, 60, h - 3], fill=(212, 208, 200), outline=(64, 64, 64))
        draw.text((12, h - bar + 7), "Start", font=self.small, fill=(0, 0, 0))
        hh, mm, ss = 10 + s.second // 3600, (2 + s.second // 60) % 60, s.second % 60
        draw.text((w - 70, h - bar + 7), f"{hh:02}:{mm:02}:{ss:02}", font=self.small,
                  fill=(0, 0, 0))
        # Terminal window.
        tx, ty, tw, th = 24, 24, int(w * 0.62), int(h * 0.58)
        self._window(draw, tx, ty, tw, th, "user@jump-7: ~")
        lines = _TYPED[: s.typed].split("\n")
        rows = max(1, (th - 30) // 15)
        for i, line in enumerate(lines[-rows:]):
            draw.text((tx + 6, ty + 26 + 15 * i), line, font=self.font, fill=(20, 20, 20))
        # Analog clock (xclock), ticking once a second.
        cs = min(150, w // 4, h // 4)
        cx0, cy0 = w - cs - 24, 24
        self._window(draw, cx0, cy0, cs, cs + 20, "xclock")
        cx, cy, r = cx0 + cs // 2, cy0 + 20 + cs // 2, cs // 2 - 8
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 250, 240), outline=(0, 0, 0))
        for k in range(12):
            a = k * math.pi / 6
            draw.line([cx + 0.85 * r * math.sin(a), cy - 0.85 * r * math.cos(a),
                       cx + r * math.sin(a), cy - r * math.cos(a)], fill=(0, 0, 0), width=2)
        for frac, length, width, colour in (
            ((s.second / 3600 + 10) / 12, 0.5, 4, (0, 0, 0)),
            (s.second / 3600 + 2 / 60, 0.75, 3, (0, 0, 0)),
            (s.second / 60, 0.9, 1, (200, 0, 0)),
        ):
            a = 2 * math.pi * frac
            draw.line([cx, cy, cx + length * r * math.sin(a), cy - length * r * math.cos(a)],
                      fill=colour, width=width)
        # A dialog that gets dragged around.
        dx, dy = s.dialog
        dw, dh = min(300, w // 2), min(140, h // 3)
        self._window(draw, dx, dy, dw, dh, "Save changes?")
        draw.text((dx + 14, dy + 36), "Save changes to notes.txt?", font=self.font, fill=(0, 0, 0))
        for i, label in enumerate(("Save", "Don't save", "Cancel")):
            bx = dx + 14 + i * (dw - 28) // 3
            draw.rectangle([bx, dy + dh - 34, bx + (dw - 28) // 3 - 8, dy + dh - 12],
                           fill=(212, 208, 200), outline=(64, 64, 64))
            draw.text((bx + 8, dy + dh - 30), label, font=self.small, fill=(0, 0, 0))
        return image

    def _background(self, w: int, h: int) -> Image.Image:
        if self.wallpaper == "flat":
            return Image.new("RGB", (w, h), (58, 110, 165))
        if (w, h) not in self._wallpapers:
            # Photo-like: smooth gradients in each channel plus fine grain, the hard
            # case for a lossless codec when a window is dragged across it.
            grad = Image.linear_gradient("L").resize((w, h))
            radial = Image.radial_gradient("L").resize((w, h))
            grain = Image.effect_noise((w, h), 24).filter(ImageFilter.GaussianBlur(1))
            across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((w, h))
            photo = Image.merge("RGB", (grad, radial, ImageChops.add(across, grain, scale=2.0)))
            self._wallpapers[(w, h)] = photo
        return self._wallpapers[(w, h)].copy()

    def _window(self, draw: ImageDraw.ImageDraw, x: int, y: int, w: int, h: int,
                title: str) -> None:
        draw.rectangle([x, y, x + w, y + h], fill=(255, 255, 255), outline=(40, 40, 40))
        draw.rectangle([x + 1, y + 1, x + w - 1, y + 19], fill=(10, 36, 106))
        draw.text((x + 6, y + 4), title, font=self.small, fill=(255, 255, 255))

    # -- damage --------------------------------------------------------------

    def _damage(self, before: Image.Image | None, after: Image.Image) -> list[Rect]:
        w, h = after.size
        if before is None or before.size != after.size:
            box: tuple[int, int, int, int] | None = (0, 0, w, h)
            diff = None
        else:
            diff = ImageChops.difference(before, after)
            box = diff.getbbox()
        if box is None:
            return []
        if not self.tiles:
            x0, y0, x1, y1 = box
            return [Rect(x0, y0, x1 - x0, y1 - y0, after.crop(box).tobytes())]
        rects = []
        x0, y0, x1, y1 = box
        for ty in range(y0 // TILE * TILE, y1, TILE):
            for tx in range(x0 // TILE * TILE, x1, TILE):
                tile = (tx, ty, min(tx + TILE, w), min(ty + TILE, h))
                if diff is not None and diff.crop(tile).getbbox() is None:
                    continue
                rects.append(Rect(tile[0], tile[1], tile[2] - tile[0], tile[3] - tile[1],
                                  after.crop(tile).tobytes()))
        return rects

    # -- session -------------------------------------------------------------

    def session(
        self,
        duration_s: float,
        *,
        step_ms: int = 40,
        gap_s: tuple[float, float] | None = None,
        resize_at_s: tuple[float, int, int] | None = None,
    ) -> Iterator[TimedRecord]:
        """Yield what a capture source would produce, timestamped in ns from session start."""
        if resize_at_s is not None and (resize_at_s[1] < MIN_WIDTH or resize_at_s[2] < MIN_HEIGHT):
            raise ValueError(f"synthetic desktop needs at least {MIN_WIDTH}x{MIN_HEIGHT}")
        yield TimedRecord(0, Start("synthetic desktop"))
        yield TimedRecord(0, default_arrow())
        previous: Image.Image | None = None
        last_state: _State | None = None
        in_gap = False
        step_ns = step_ms * 1_000_000
        end_ns = int(duration_s * NS)
        for ts in range(0, end_ns, step_ns):
            t = ts / NS
            if gap_s is not None and gap_s[0] <= t < gap_s[1]:
                in_gap = True
                continue
            if in_gap and gap_s is not None:
                in_gap = False
                yield TimedRecord(ts, Gap(int(gap_s[0] * NS), ts, "connection lost; reconnected"))
                previous = None  # The server repaints everything after a reconnect.
            if resize_at_s is not None and t >= resize_at_s[0] and (
                    self.width, self.height) != resize_at_s[1:]:
                self.width, self.height = resize_at_s[1], resize_at_s[2]
                yield TimedRecord(ts, DesktopResize(self.width, self.height))
                previous = None
            state = self.state(t)
            if state == last_state and previous is not None:
                continue
            image = self.render(state)
            for rect in self._damage(previous, image):
                yield TimedRecord(ts, rect)
            if last_state is None or state.dialog != last_state.dialog:
                dx, dy = state.dialog
                yield TimedRecord(ts, Pointer(dx + 60, dy + 10))
            previous, last_state = image, state
        yield TimedRecord(end_ns, Stop("session ended"))
