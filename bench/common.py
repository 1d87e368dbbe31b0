"""What every suite shares: statistics, machine facts, the desktop and MinIO, recorded data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lucid_common.api import RecordingSessionSpec
from lucid_devstack.desktop import Desktop
from lucid_devstack.minio import MinioServer
from lucid_recorder.rdp import CaptureConfig, Event, Rect, TlsConfig, TlsMode, capture

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DOCS = REPO / "docs" / "benchmarks.md"
PLOTS_DIR = REPO / "docs" / "benchmarks"
MB = 1_000_000  # throughput is in decimal megabytes, as disk and network speeds are
MIB = 1024 * 1024

_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr with the time since start: a full run takes many minutes."""
    elapsed = time.monotonic() - _T0
    print(f"[bench {elapsed / 60:5.1f} min] {message}", file=sys.stderr, flush=True)


# -- statistics -----------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median plus min/max: on a noisy machine the range says how far to trust the median."""
    return {"median": median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": list(values)}


# -- the machine ------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    lines = done.stdout.splitlines()
    return lines[0] if lines else "unavailable"


def machine_info() -> dict[str, Any]:
    packages = {}
    for name in ("zstandard", "cryptography", "aardwolf", "minio", "Pillow", "matplotlib",
                 "psutil", "numpy"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    git = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                               / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "ffmpeg": _first_line(["ffmpeg", "-hide_banner", "-version"]),
        "git_commit": git,
        "load_average_at_start": os.getloadavg(),
    }


# -- the recording spec -------------------------------------------------------------------


def make_spec(endpoint: str, bucket: str, *, max_seconds: int | None = None,
              max_bytes: int | None = None, depth: int = 32,
              width: int = 1024, height: int = 768,
              max_fps: int | None = None) -> RecordingSessionSpec:
    """A session spec as the operator would pass it; unset chunking keeps the API defaults."""
    chunking: dict[str, int] = {}
    if max_seconds is not None:
        chunking["maxSeconds"] = max_seconds
    if max_bytes is not None:
        chunking["maxBytes"] = max_bytes
    return RecordingSessionSpec.model_validate({
        "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "unused"}},
        "storage": {"endpoint": endpoint, "bucket": bucket,
                    "credentialsSecretRef": {"name": "unused"}, "tls": {"enabled": False}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
        "recording": {"desktop": {"width": width, "height": height, "colorDepth": depth},
                      **({"maxFps": max_fps} if max_fps is not None else {})},
        "chunking": chunking,
    })


def capture_config(desktop: Desktop, depth: int) -> CaptureConfig:
    tls = TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256=desktop.tls_fingerprint_sha256)
    return CaptureConfig(host="127.0.0.1", port=desktop.rdp_port, username=desktop.username,
                         password=desktop.password, width=desktop.width, height=desktop.height,
                         color_depth=depth, tls=tls)


# -- shared fixtures ------------------------------------------------------------------------


@dataclass
class Recorded:
    """A real desktop workload captured into memory, for replay by the pipeline and latency."""

    depth: int
    seconds: float
    events: list[Event]

    @property
    def rgb_bytes(self) -> int:
        return sum(len(e.rgb) for e in self.events if isinstance(e, Rect))


async def record_events(desktop: Desktop, depth: int, seconds: float) -> list[Event]:
    """Capture `seconds` of the scripted workload: Connected, then every update."""
    events: list[Event] = []
    async with contextlib.aclosing(capture(capture_config(desktop, depth))) as stream:
        events.append(await asyncio.wait_for(anext(stream), 60))

        async def read() -> None:
            async for event in stream:
                events.append(event)

        reader = asyncio.create_task(read())
        try:
            await asyncio.to_thread(desktop.run_workload, seconds)
            # The last updates of the workload are still on their way.
            await asyncio.sleep(0.5)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return [e for e in events if type(e).__name__ != "Disconnected"]


@dataclass
class Context:
    """Lazily started local services, shared by the suites of one run."""

    workdir: Path
    quick: bool
    _desktop: Desktop | None = field(default=None, init=False)
    # Desktops beyond the first, for suites that record several at once.
    _more_desktops: list[Desktop] = field(default_factory=list, init=False)
    _minio: MinioServer | None = field(default=None, init=False)
    _recorded: Recorded | None = field(default=None, init=False)
    # Results of one suite another may use (rss → latency at the default chunk size).
    shared: dict[str, Any] = field(default_factory=dict, init=False)

    def desktop(self) -> Desktop:
        if self._desktop is None:
            log("starting the desktop (Xvnc + xrdp, 1024x768, depth 24)")
            self._desktop = Desktop(self.workdir / "desktop").start()
        return self._desktop

    def desktops(self, count: int) -> list[Desktop]:
        """`count` desktops, the first being desktop(); each has its own display and ports."""
        running = [self.desktop(), *self._more_desktops]
        while len(running) < count:
            index = len(running)
            log(f"starting desktop {index + 1} of {count} (Xvnc + xrdp, 1024x768, depth 24)")
            more = Desktop(self.workdir / f"desktop-{index}").start()
            self._more_desktops.append(more)
            running.append(more)
        return running[:count]

    def minio(self) -> MinioServer:
        if self._minio is None:
            log("starting MinIO")
            self._minio = MinioServer(self.workdir / "minio").start()
        return self._minio

    def recorded(self) -> Recorded:
        if self._recorded is None:
            seconds = 8.0 if self.quick else 20.0
            log(f"recording {seconds:g} s of the 32 bpp workload into memory")
            events = asyncio.run(record_events(self.desktop(), 32, seconds))
            self._recorded = Recorded(32, seconds, events)
            log(f"recorded {len(events)} events, {self._recorded.rgb_bytes / MB:.1f} MB of RGB")
        return self._recorded

    def close(self) -> None:
        for desktop in self._more_desktops:
            desktop.stop()
        if self._desktop is not None:
            self._desktop.stop()
        if self._minio is not None:
            self._minio.stop()


@contextlib.contextmanager
def scratch_context(prefix: str, quick: bool = False) -> Iterator[Context]:
    """A Context in a fresh scratch directory; services stopped and the directory removed
    on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    ctx = Context(workdir, quick)
    try:
        yield ctx
    finally:
        ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
