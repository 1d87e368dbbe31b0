"""Scripted, repeatable desktop workloads for the benchmarks and their tests (issue 15).

    terminal  a real shell in an xterm: commands, `ls -lR /usr`, `top`, `less` paging
    browser   chromium on generated local pages, scrolled and clicked
    office    windows opened, moved and resized over a photo wallpaper
    video     a region that changes every frame (ffplay of a test pattern)
    idle      nothing but the clock

Each is a Workload: start() on a running Desktop, drive(seconds), stop(). Choices come
from a fixed seed and the content is generated, so every run does the same things.
Test infrastructure: product code never imports this.

    .venv/bin/python -m lucid_devstack.workloads terminal --seconds 20
"""

from __future__ import annotations

from pathlib import Path

from lucid_devstack.desktop import Desktop
from lucid_devstack.workloads.base import DriveResult, Workload
from lucid_devstack.workloads.browser import Browser
from lucid_devstack.workloads.idle import Idle
from lucid_devstack.workloads.office import Office
from lucid_devstack.workloads.terminal import Terminal
from lucid_devstack.workloads.video import Video

WORKLOADS: dict[str, type[Workload]] = {
    cls.name: cls for cls in (Terminal, Browser, Office, Video, Idle)
}


def make(name: str, desktop: Desktop, workdir: Path) -> Workload:
    try:
        cls = WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}") \
            from None
    return cls(desktop, workdir)


__all__ = ["WORKLOADS", "DriveResult", "Workload", "make"]
