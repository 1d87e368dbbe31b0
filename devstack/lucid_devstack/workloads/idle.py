"""idle: nothing on the screen changes but the clock's second hand."""

from __future__ import annotations

import time

from lucid_devstack.workloads.base import DriveResult, Workload


class Idle(Workload):
    name = "idle"
    default_seconds = 300.0

    def drive(self, seconds: float) -> DriveResult:
        deadline = time.monotonic() + seconds
        steps = 0
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            steps += 1
        self.desktop.check_running()
        return DriveResult(self.name, seconds, steps, {"seconds_waited": steps})
