"""What every desktop workload shares: X clients it starts, windows it finds, xdotool.

A workload starts its own X clients on a running Desktop (start), drives them for a
given number of seconds (drive), and stops them again (stop), leaving the desktop as it
found it. start() is not part of what a benchmark records: it waits until the windows
are up, so that a recording begins on a settled screen and every run of the same
workload begins from the same state.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from lucid_devstack.desktop import Desktop
from lucid_devstack.proc import Proc, StackError, run

WINDOW_TIMEOUT_S = 60.0
# Every workload draws its choices from this seed, so two runs do the same things.
SEED = 15


@dataclass
class DriveResult:
    """What a drive did: steps (a workload's own unit of work) and what it counted."""

    workload: str
    seconds: float
    steps: int
    counts: dict[str, int] = field(default_factory=dict)


class Workload:
    """Base class: X clients of one desktop, started and stopped together."""

    name: ClassVar[str] = ""
    # The duration for a benchmark run; drive() takes any duration.
    default_seconds: ClassVar[float] = 120.0

    def __init__(self, desktop: Desktop, workdir: Path) -> None:
        self.desktop = desktop
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}
        self.windows: dict[str, str] = {}
        self.rng = random.Random(SEED)
        self._hidden: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workload's clients and wait for their windows; idempotent per run."""
        self.rng = random.Random(SEED)
        try:
            # The desktop's own terminal (running `cat`) would sit in every workload's
            # screen; the clock stays, as on a real desktop.
            self.hide(self.desktop.window("xterm"))
            self.setup()
        except BaseException:
            self.stop()
            raise

    def setup(self) -> None:
        """Subclasses: start clients, wait for windows."""

    def drive(self, seconds: float) -> DriveResult:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every client this workload started and show what start() hid."""
        for name in reversed(list(self.procs)):
            self.procs[name].stop(grace=5.0)
        self.procs.clear()
        self.windows.clear()
        for window in self._hidden:
            self.xdotool("windowmap", window)
        self._hidden.clear()

    def check_running(self) -> None:
        """Raise StackError naming a client that has died: its workload did not run."""
        for name, proc in self.procs.items():
            if not proc.running:
                raise StackError(f"workload {self.name}: {name} exited "
                                 f"(code {proc.popen.returncode if proc.popen else None}); "
                                 f"log {proc.log}")

    # -- X helpers -------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return self.desktop.x_env

    def xdotool(self, *args: str) -> str:
        return run(["xdotool", *args], timeout=30, env=self.env)

    def hide(self, window: str) -> None:
        self.xdotool("windowunmap", "--sync", window)
        self._hidden.append(window)

    def launch(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> Proc:
        proc = Proc(name=name, argv=argv, log=self.workdir / "logs" / f"{name}.log",
                    env={**self.env, **(env or {})}, cwd=cwd or self.workdir).start()
        self.procs[name] = proc
        return proc

    def search(self, *criteria: str) -> list[str]:
        """Visible windows matching xdotool search criteria, e.g. ("--name", "^x$")."""
        try:
            done = subprocess.run(["xdotool", "search", "--onlyvisible", *criteria],
                                  capture_output=True, text=True, timeout=10,
                                  env={**os.environ, **self.env}, check=False)
        except subprocess.TimeoutExpired:
            return []
        # xdotool exits 1 when nothing matches (yet).
        return done.stdout.split() if done.returncode == 0 else []

    def wait_window(self, name: str, *criteria: str,
                    timeout: float = WINDOW_TIMEOUT_S) -> str:
        """Wait for the window of client `name` and remember it under that name."""
        found: list[str] = []

        def visible() -> bool:
            found[:] = self.search(*criteria)
            return bool(found)

        self.procs[name].wait_until(visible, timeout, f"window {' '.join(criteria)}")
        # The last match is the newest window: a toolkit may map a helper window first.
        self.windows[name] = found[-1]
        return found[-1]

    def geometry(self, window: str) -> tuple[int, int, int, int]:
        out = self.xdotool("getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def type_into(self, window: str, text: str, delay_ms: int = 15) -> None:
        """Type through XTEST, as a user does (xterm ignores synthetic SendEvent keys)."""
        self.xdotool("windowfocus", "--sync", window)
        self.xdotool("type", "--delay", str(delay_ms), "--", text)

    def key(self, window: str, *keys: str) -> None:
        self.xdotool("windowfocus", "--sync", window)
        self.xdotool("key", "--", *keys)


def hold(deadline: float, seconds: float) -> None:
    """Sleep `seconds`, but not past `deadline` (a monotonic time)."""
    time.sleep(max(0.0, min(seconds, deadline - time.monotonic())))
