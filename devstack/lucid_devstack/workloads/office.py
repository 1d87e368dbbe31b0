"""office: windows opened, moved, resized, raised and closed over a photo wallpaper.

The wallpaper is one of a set of generated photo-like images (content.photo), set with
`feh --bg-fill` and changed twice a run; the windows are a document and a table of
figures in a pager (xterm with less), a calculator (xcalc) and the clock. There is no
window manager: windows are moved and resized by xdotool, as a user's drags would.

No photo viewer window: moving or resizing a feh window showing a photo-like image
crashes the desktop's xrdp 0.9.21 ("corrupted size vs. prev_size" in its log, the RDP
session dropped) within seconds, reproducibly; the wallpaper alone, under windows being
moved, does not. The photo content is still there, in the wallpaper.
"""

from __future__ import annotations

import time

from lucid_devstack.proc import run
from lucid_devstack.workloads.base import DriveResult, Workload, hold
from lucid_devstack.workloads.content import document, photo, spreadsheet

WALLPAPERS = 3
MAX_WINDOWS = 4
KINDS = ("document", "calculator", "sheet")
# Steps of a drag or a resize: a user's drag reaches the X server as many small moves.
DRAG_STEPS = 12
DRAG_STEP_S = 0.04


class Office(Workload):
    name = "office"

    def setup(self) -> None:
        self.wallpapers = []
        for number in range(WALLPAPERS):
            path = self.workdir / f"wallpaper-{number}.png"
            if not path.exists():
                photo(self.desktop.width, self.desktop.height, 1000 + number).save(path)
            self.wallpapers.append(path)
        self.document = document(self.workdir / "report.txt", 7)
        self.sheet = spreadsheet(self.workdir / "figures.txt", 8)
        self.black = self.workdir / "black.png"
        if not self.black.exists():
            from PIL import Image

            Image.new("RGB", (8, 8)).save(self.black)
        self.set_wallpaper(self.wallpapers[0])
        self.opened = 0
        self.open_windows: list[str] = []

    def set_wallpaper(self, path: object) -> None:
        # feh sets the root window's background pixmap and exits; --no-fehbg keeps it
        # from writing ~/.fehbg.
        run(["feh", "--no-fehbg", "--bg-fill", str(path)], timeout=30, env=self.env)

    def stop(self) -> None:
        try:
            if hasattr(self, "black"):
                self.set_wallpaper(self.black)
        finally:
            super().stop()

    def open_window(self) -> str:
        kind = KINDS[self.opened % len(KINDS)]
        name = f"{kind}-{self.opened}"
        self.opened += 1
        width = self.rng.randrange(300, 560)
        height = self.rng.randrange(220, 420)
        x = self.rng.randrange(0, self.desktop.width - width)
        y = self.rng.randrange(0, self.desktop.height - height)
        geometry = f"{width}x{height}+{x}+{y}"
        if kind == "calculator":
            self.launch(name, ["xcalc", "-title", name, "-geometry", geometry])
        else:
            text = self.document if kind == "document" else self.sheet
            self.launch(name, ["xterm", "-title", name, "-geometry", f"80x24+{x}+{y}",
                               "-e", "less", "-S", str(text)], env={"TERM": "xterm"})
        window = self.wait_window(name, "--name", f"^{name}$")
        self.open_windows.append(name)
        return window

    def close_oldest(self) -> None:
        name = self.open_windows.pop(0)
        self.procs.pop(name).stop(grace=5.0)
        self.windows.pop(name, None)

    def drag(self, window: str) -> None:
        x, y, width, height = self.geometry(window)
        tx = self.rng.randrange(0, max(1, self.desktop.width - width))
        ty = self.rng.randrange(0, max(1, self.desktop.height - height))
        for step in range(1, DRAG_STEPS + 1):
            self.xdotool("windowmove", window, str(x + (tx - x) * step // DRAG_STEPS),
                         str(y + (ty - y) * step // DRAG_STEPS))
            time.sleep(DRAG_STEP_S)

    def resize(self, window: str) -> None:
        x, y, width, height = self.geometry(window)
        tw = self.rng.randrange(240, max(241, min(640, self.desktop.width - x)))
        th = self.rng.randrange(180, max(181, min(480, self.desktop.height - y)))
        for step in range(1, DRAG_STEPS // 2 + 1):
            self.xdotool("windowsize", window, str(width + (tw - width) * step * 2 // DRAG_STEPS),
                         str(height + (th - height) * step * 2 // DRAG_STEPS))
            time.sleep(DRAG_STEP_S * 2)

    def drive(self, seconds: float) -> DriveResult:
        began = time.monotonic()
        deadline = began + seconds
        counts = {"opened": 0, "closed": 0, "moves": 0, "resizes": 0, "raises": 0,
                  "wallpapers": 1, "pages": 0}
        wallpaper = 0
        while time.monotonic() < deadline:
            # A new wallpaper at each third of the run.
            due = min(WALLPAPERS - 1, int(3 * (time.monotonic() - began) / seconds))
            if due != wallpaper:
                wallpaper = due
                self.set_wallpaper(self.wallpapers[wallpaper])
                counts["wallpapers"] += 1
            if len(self.open_windows) < MAX_WINDOWS:
                self.open_window()
                counts["opened"] += 1
            else:
                action = self.rng.choice(("move", "move", "resize", "raise", "page", "close"))
                name = self.rng.choice(self.open_windows)
                window = self.windows[name]
                if action == "move":
                    self.drag(window)
                    counts["moves"] += 1
                elif action == "resize":
                    self.resize(window)
                    counts["resizes"] += 1
                elif action == "raise":
                    self.xdotool("windowraise", window)
                    counts["raises"] += 1
                elif action == "page" and not name.startswith("calculator"):
                    self.key(window, "space")
                    counts["pages"] += 1
                elif action == "close":
                    self.close_oldest()
                    counts["closed"] += 1
            hold(deadline, 0.4)
        self.check_running()
        return DriveResult(self.name, seconds, sum(counts.values()), counts)
