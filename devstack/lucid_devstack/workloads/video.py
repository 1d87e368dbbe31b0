"""video: a 640x360 region that changes every frame (ffplay of a generated test pattern).

The worst case for a screen recorder: every frame redraws the whole region, and nothing
on it repeats. ffmpeg's testsrc2 is deterministic (the same frames on every machine).
"""

from __future__ import annotations

import time

from lucid_devstack.workloads.base import DriveResult, Workload, hold

TITLE = "lucid-video"
WIDTH, HEIGHT, RATE = 640, 360, 25


class Video(Workload):
    name = "video"

    def setup(self) -> None:
        x, y = (self.desktop.width - WIDTH) // 2, (self.desktop.height - HEIGHT) // 2
        self.launch("ffplay", [
            "ffplay", "-hide_banner", "-loglevel", "error", "-nostats", "-an",
            "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}",
            "-window_title", TITLE, "-left", str(x), "-top", str(y), "-noborder",
        ], env={"SDL_AUDIODRIVER": "dummy", "SDL_VIDEODRIVER": "x11"})
        self.wait_window("ffplay", "--name", f"^{TITLE}$")

    def drive(self, seconds: float) -> DriveResult:
        deadline = time.monotonic() + seconds
        steps = 0
        while time.monotonic() < deadline:
            hold(deadline, 1.0)
            self.check_running()
            steps += 1
        return DriveResult(self.name, seconds, steps, {"frames_expected": int(seconds * RATE)})
