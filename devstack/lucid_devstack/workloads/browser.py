"""browser: Debian's chromium, non-headless, on generated local pages, scrolled and clicked.

The pages (content.web_pages: an intranet index, a long article with figures, a table of
400 rows, an image gallery) share a navigation bar fixed to the bottom of the viewport,
so its links sit at known screen positions whatever the page's scroll position.
"""

from __future__ import annotations

import shutil
import time

from lucid_devstack.workloads.base import DriveResult, Workload, hold
from lucid_devstack.workloads.content import NAV_HEIGHT, PAGES, web_pages

SEED = 21
# Seconds on a page before the next link is clicked.
PAGE_S = 12.0
# Not a user's choices, but what keeps the browser quiet and every run the same: no
# first-run dialogs, no network, no GPU (there is none), a fresh profile each start.
# --no-sandbox because the devstack runs as root; --test-type hides its warning bar.
CHROMIUM_FLAGS = (
    "--no-sandbox", "--test-type", "--no-first-run", "--no-default-browser-check",
    "--disable-gpu", "--password-store=basic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-features=Translate,MediaRouter",
    "--disable-session-crashed-bubble", "--window-position=0,0",
)


class Browser(Workload):
    name = "browser"

    def setup(self) -> None:
        pages = web_pages(self.workdir / "web", SEED)
        profile = self.workdir / "chromium-profile"
        shutil.rmtree(profile, ignore_errors=True)
        self.launch("chromium", [
            "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
            f"--window-size={self.desktop.width},{self.desktop.height}",
            pages["index"].as_uri(),
        ])
        self.wait_window("chromium", "--name", "^Index - Chromium$")
        # The first paint of the page and its images.
        time.sleep(2.0)

    def click_nav(self, page: str) -> None:
        x, y, width, height = self.geometry(self.windows["chromium"])
        index = PAGES.index(page)
        self.xdotool("mousemove", "--sync", str(x + width * (2 * index + 1) // (2 * len(PAGES))),
                     str(y + height - NAV_HEIGHT // 2), "click", "1")

    def drive(self, seconds: float) -> DriveResult:
        deadline = time.monotonic() + seconds
        window = self.windows["chromium"]
        counts = {"clicks": 0, "scrolls": 0, "keys": 0}
        x, y, width, height = self.geometry(window)
        visit = 0
        while time.monotonic() < deadline:
            page = PAGES[(visit + 1) % len(PAGES)]
            self.click_nav(page)
            counts["clicks"] += 1
            visit += 1
            end = min(deadline, time.monotonic() + min(PAGE_S, seconds / 2))
            hold(end, 1.0)
            # Reading: the pointer over the text, a few wheel notches at a time, now and
            # then back up, and a Page Down from the keyboard.
            self.xdotool("mousemove", str(x + width // 2), str(y + height // 2))
            step = 0
            while time.monotonic() < end:
                step += 1
                if step % 9 == 0:
                    self.key(window, "Next")
                    counts["keys"] += 1
                else:
                    button = "4" if step % 6 == 0 else "5"
                    self.xdotool("click", "--repeat", str(self.rng.randrange(1, 4)),
                                 "--delay", "60", button)
                    counts["scrolls"] += 1
                hold(end, 0.5)
        self.check_running()
        return DriveResult(self.name, seconds, sum(counts.values()), counts)
