"""The benchmark workloads run on the real desktop and really change its screen.

Each workload drives the devstack's Xvnc desktop for ~10 s (the benchmark runs them for
minutes); screenshots taken while it runs show that it did what it says, so the scripts
cannot rot silently into a static screen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import psutil
import pytest
from PIL import Image, ImageChops, ImageStat

from lucid_devstack.desktop import TERM_TITLE, Desktop
from lucid_devstack.workloads import WORKLOADS, DriveResult, Workload, make
from lucid_devstack.workloads.browser import Browser
from lucid_devstack.workloads.video import HEIGHT as VIDEO_HEIGHT
from lucid_devstack.workloads.video import WIDTH as VIDEO_WIDTH

pytestmark = pytest.mark.stack

DRIVE_S = 10.0
# Windows the office workload opens in DRIVE_S (it keeps up to four open).
MAX_OPEN_AT_LEAST = 3


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    running = Desktop(tmp_path_factory.mktemp("workload-desktop")).start()
    yield running
    running.stop()


class Driven:
    """A workload driven in a thread while the test takes screenshots."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.shots: list[Image.Image] = []
        self.result: DriveResult | None = None

    def run(self, seconds: float = DRIVE_S, shots: int = 4) -> Driven:
        with ThreadPoolExecutor(1) as pool:
            began = time.monotonic()
            drive = pool.submit(self.workload.drive, seconds)
            for index in range(shots):
                time.sleep(max(0.0, began + seconds * (index + 0.5) / shots
                               - time.monotonic()))
                self.shots.append(self.workload.desktop.screenshot_rgb())
            # Raises here whatever the workload raised in its thread.
            self.result = drive.result(timeout=seconds + 120)
        return self


def changed_box(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    return ImageChops.difference(a, b).getbbox()


def inside(box: tuple[int, int, int, int], window: tuple[int, int, int, int],
           border: int = 4) -> bool:
    """Whether a changed box lies within a window, its X border (a few pixels) included."""
    x, y, width, height = window
    return (box[0] >= x - border and box[1] >= y - border
            and box[2] <= x + width + border and box[3] <= y + height + border)


def run_workload(desktop: Desktop, tmp_path: Path, name: str) -> tuple[Workload, Driven]:
    workload = make(name, desktop, tmp_path / name)
    workload.start()
    return workload, Driven(workload)


def test_every_workload_has_a_test() -> None:
    tested = {"terminal", "browser", "office", "video", "idle"}
    assert set(WORKLOADS) == tested


def test_terminal_runs_a_real_shell_and_scrolls(desktop: Desktop, tmp_path: Path) -> None:
    workload, driven = run_workload(desktop, tmp_path, "terminal")
    try:
        xterm = workload.procs["xterm"]
        assert xterm.popen is not None
        shells = [p for p in psutil.Process(xterm.popen.pid).children(recursive=True)
                  if p.name() == "bash"]
        assert shells, "the terminal runs no bash"
        window = workload.geometry(workload.windows["xterm"])
        driven.run()
    finally:
        workload.stop()
    result = driven.result
    assert result is not None
    # Every phase ran: short commands, ls, top and less (which also counts pages).
    assert result.counts["commands"] >= 4 and result.counts["pages"] >= 1, result
    # The terminal's own pixels (the clock beside it changes anyway) differ between
    # every two screenshots: output scrolled, top refreshed, less paged.
    x, y, width, height = window
    crops = [shot.crop((x, y, x + width, y + height)) for shot in driven.shots]
    unchanged = [i for i, (a, b) in enumerate(pairwise(crops))
                 if changed_box(a, b) is None]
    assert not unchanged, f"the terminal did not change between shots {unchanged}"


def test_browser_navigates_and_scrolls_chromium(desktop: Desktop, tmp_path: Path) -> None:
    workload, driven = run_workload(desktop, tmp_path, "browser")
    try:
        assert isinstance(workload, Browser)
        window = workload.windows["chromium"]
        assert workload.xdotool("getwindowname", window).strip() == "Index - Chromium"
        driven.run()
        # The clicks on the page's links navigated: the title is another page's.
        title = workload.xdotool("getwindowname", window).strip()
    finally:
        workload.stop()
    assert title != "Index - Chromium" and title.endswith(" - Chromium"), title
    assert driven.result is not None and driven.result.counts["scrolls"] >= 3
    assert all(changed_box(a, b) for a, b in pairwise(driven.shots))
    assert not workload.search("--name", " - Chromium$"), "chromium outlived stop()"


def test_office_moves_windows_over_a_photo(desktop: Desktop, tmp_path: Path) -> None:
    workload, driven = run_workload(desktop, tmp_path, "office")
    try:
        driven.run()
    finally:
        workload.stop()
    result = driven.result
    assert result is not None
    assert result.counts["opened"] >= MAX_OPEN_AT_LEAST, result
    assert result.counts["moves"] + result.counts["resizes"] >= 1, result
    # The wallpaper is photo-like: busy everywhere, not a flat colour.
    first = driven.shots[0]
    corner = first.crop((0, first.height - 120, 300, first.height))
    assert max(ImageStat.Stat(corner).stddev) > 20, "no photo wallpaper"
    assert all(changed_box(a, b) for a, b in pairwise(driven.shots))
    # stop() put the black background back.
    after = desktop.screenshot_rgb().crop((0, first.height - 120, 300, first.height))
    assert after.getextrema() == ((0, 0), (0, 0), (0, 0))


def test_video_changes_its_region_every_frame(desktop: Desktop, tmp_path: Path) -> None:
    workload, driven = run_workload(desktop, tmp_path, "video")
    try:
        x, y, width, height = workload.geometry(workload.windows["ffplay"])
        assert (width, height) == (VIDEO_WIDTH, VIDEO_HEIGHT)
        # Two frames 80 ms apart (two frames at 25 fps) already differ.
        a = desktop.screenshot_rgb()
        time.sleep(0.08)
        b = desktop.screenshot_rgb()
        driven.run(shots=3)
    finally:
        workload.stop()
    region = (x, y, x + width, y + height)
    assert changed_box(a.crop(region), b.crop(region)) is not None
    for one, two in pairwise(driven.shots):
        assert changed_box(one.crop(region), two.crop(region)) is not None


def test_idle_changes_nothing_but_the_clock(desktop: Desktop, tmp_path: Path) -> None:
    workload, driven = run_workload(desktop, tmp_path, "idle")
    try:
        clock = desktop.window_geometry("xclock")
        driven.run(seconds=6.0, shots=3)
    finally:
        workload.stop()
    boxes = [changed_box(a, b) for a, b in pairwise(driven.shots)]
    # The second hand moves every second, so each pair differs, and only in the clock.
    assert all(box is not None and inside(box, clock) for box in boxes), (boxes, clock)
    # stop() showed the desktop's own terminal again.
    assert workload.search("--name", f"^{TERM_TITLE}$") == [desktop.window("xterm")]
