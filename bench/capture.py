"""Capture cost and size: the scripted workload recorded at 24 and 32 bpp, against x264 and PNG.

Per repetition, on the same desktop and the same scripted workload (Desktop.run_workload):

- ours at 24 bpp and at 32 bpp, each with the native core (lucid_native, what the
  recorder image runs) and with the pure-Python reference (LUCID_NATIVE=0): bench.child
  captures in its own process, chunking, compressing and sealing in line (no spool, no
  upload); its CPU time from Connected to the last sealed chunk, and the sealed bytes,
  per minute recorded;
- `ffmpeg -f x11grab … -c:v libx264 -preset ultrafast -crf 23`: file size and ffmpeg's
  CPU time (wait4 rusage), per minute; alongside it, the same with `-pix_fmt yuv420p`
  (the stated command encodes x11grab's RGB as 4:4:4; 4:2:0 is the usual, smaller form);
- during the x264 runs, a full-screen PNG each second (xwd screenshot, Pillow's default
  PNG compression): bytes per minute. Screenshots run in this process, so they do not
  count in ffmpeg's CPU time, but they do share the two cores with it.

The order of the runs rotates between repetitions so slow drift of the shared
machine does not always favour the same one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.children import run_child, wait_child
from bench.common import MIB, Context, log, median, spread
from lucid_devstack.desktop import Desktop

DEPTHS = (24, 32)
# The child's LUCID_NATIVE for each hot path (lucid_recorder.native).
IMPLEMENTATIONS = {"native": "1", "reference": "0"}


def lucid_key(depth: int, implementation: str) -> str:
    """ours24, ours24_reference, ...: the native core is what ships, so it has the plain key."""
    return f"ours{depth}" + ("" if implementation == "native" else f"_{implementation}")


LUCID_RUNS: dict[str, tuple[int, str]] = {lucid_key(d, i): (d, i) for d in DEPTHS
                                          for i in IMPLEMENTATIONS}


class PngGrabber(threading.Thread):
    """A full-frame PNG every second: the simplest lossless screen recorder."""

    def __init__(self, ctx: Context, desktop: Desktop | None = None) -> None:
        super().__init__(daemon=True)
        self.desktop = desktop or ctx.desktop()
        self.sizes: list[int] = []
        self.encode_cpu_s = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        tick = time.monotonic()
        while not self.done.is_set():
            image = self.desktop.screenshot_rgb()
            began = time.thread_time()
            out = io.BytesIO()
            image.save(out, format="PNG")
            self.encode_cpu_s += time.thread_time() - began
            self.sizes.append(out.tell())
            tick += 1.0
            self.done.wait(max(0.0, tick - time.monotonic()))


def _ffprobe(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,pix_fmt,width,height,nb_frames:format=duration",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=False)
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {}
    stream = (info.get("streams") or [{}])[0]
    return {**stream, "duration": float(info.get("format", {}).get("duration", "nan"))}


def _x264_argv(ctx: Context, seconds: float, out: Path, extra: list[str],
               desktop: Desktop | None = None) -> list[str]:
    desktop = desktop or ctx.desktop()
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "x11grab", "-video_size", f"{desktop.width}x{desktop.height}",
            "-framerate", "10", "-i", desktop.display, "-t", f"{seconds:g}",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", *extra, str(out)]


def _x264_result(argv: list[str], out: Path, seconds: float, rusage: Any) -> dict[str, Any]:
    probe = _ffprobe(out)
    duration = probe.get("duration") or seconds
    size = out.stat().st_size
    cpu = rusage.ru_utime + rusage.ru_stime
    out.unlink()
    return {"argv": " ".join([*argv[:-1], "out.mp4"]), "bytes": size, "duration_s": duration,
            "cpu_s": cpu, "bytes_per_min": size / duration * 60,
            "cpu_s_per_min": cpu / duration * 60, "stream": probe}


# From x11grab's RGB the stated command encodes 4:4:4 (High 4:4:4 Predictive); screen
# recordings usually go 4:2:0, which is smaller still, so that is measured too.
X264_VARIANTS: dict[str, list[str]] = {"x264": [], "x264_420": ["-pix_fmt", "yuv420p"]}


@contextlib.contextmanager
def x264_alongside(ctx: Context, seconds: float, workdir: Path,
                   desktop: Desktop | None = None) -> Iterator[Callable[[], dict[str, Any]]]:
    """Encode the desktop (default: the context's) with every X264_VARIANTS while the body runs.

    The body calls the yielded function once its own work is done: it waits for each
    ffmpeg and returns its result. Whatever happens, no ffmpeg outlives the block.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    desktop = desktop or ctx.desktop()
    argvs = {name: _x264_argv(ctx, seconds, workdir / f"{name}.mp4", extra, desktop)
             for name, extra in X264_VARIANTS.items()}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def finish() -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, proc in procs.items():
            status, rusage = wait_child(proc, seconds + 120)
            if status != 0:
                raise RuntimeError(f"ffmpeg exited with {status}: see {workdir}/{name}.log")
            result[name] = _x264_result(argvs[name], workdir / f"{name}.mp4", seconds, rusage)
        return result

    try:
        for name, argv in argvs.items():
            with open(workdir / f"{name}.log", "wb") as err:
                procs[name] = subprocess.Popen(argv, env={**os.environ, **desktop.x_env},
                                               stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=err)
        yield finish
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def baselines(ctx: Context, seconds: float, workdir: Path) -> dict[str, Any]:
    """x264 as the issue states it, x264 in 4:2:0 next to it, and PNG, over one workload."""
    grabber = PngGrabber(ctx)
    try:
        with x264_alongside(ctx, seconds, workdir) as finish:
            grabber.start()
            ctx.desktop().run_workload(seconds)
            grabber.done.set()
            result = finish()
    finally:
        grabber.done.set()
        if grabber.is_alive():
            grabber.join()
    png_seconds = max(1, len(grabber.sizes))  # one frame a second
    result["png"] = {
        "frames": len(grabber.sizes),
        "bytes": sum(grabber.sizes),
        "median_frame_bytes": median(grabber.sizes) if grabber.sizes else None,
        "bytes_per_min": sum(grabber.sizes) / png_seconds * 60,
        "encode_cpu_s_per_min": grabber.encode_cpu_s / png_seconds * 60,
    }
    return result


def ours(ctx: Context, depth: int, implementation: str, seconds: float,
         workdir: Path) -> dict[str, Any]:
    child = run_child(ctx, "capture", depth, seconds, workdir, sample_rss=True,
                      extra_env={"LUCID_NATIVE": IMPLEMENTATIONS[implementation]})
    r = child.result
    during = [rss for t, rss in child.rss if child.connected_at_s <= t <= child.stopped_at_s]
    if r.get("implementation") != implementation:
        raise RuntimeError(f"the capture child ran {r.get('implementation')}, "
                           f"not {implementation}")
    if r["session_bpp"] != depth:
        raise RuntimeError(f"asked for a {depth} bpp session, got {r['session_bpp']} bpp")
    per_min = 60 / r["wall_s"]
    stage_cpu = sum(r["cpu_stage_s"].values())
    return {
        **r,
        "rusage_cpu_s": child.rusage_cpu_s,
        "cpu_s_per_min": r["cpu_total_s"] * per_min,
        "capture_cpu_s_per_min": (r["cpu_total_s"] - stage_cpu) * per_min,
        "stage_cpu_s_per_min": {k: v * per_min for k, v in r["cpu_stage_s"].items()},
        "bytes_per_min": r["bytes"]["sealed"] * per_min,
        "segment_bytes_per_min": r["bytes"]["segments"] * per_min,
        "rgb_bytes_per_min": r["bytes"]["rgb"] * per_min,
        "updates_per_min": r["events"] * per_min,
        # A busy session's recorder alone (this in-line pipeline) on one core.
        "sessions_per_core": 60 / (r["cpu_total_s"] * per_min),
        # This child's RSS while it recorded (one sample a second): capture and the
        # in-line pipeline, without the spool and upload of a real Recording.
        "rss_median_mib": median(during) / MIB if during else None,
        "rss_max_mib": max(during) / MIB if during else None,
    }


def run(ctx: Context) -> dict[str, Any]:
    seconds = 15.0 if ctx.quick else 60.0
    repetitions = 1 if ctx.quick else 3
    runs = [*LUCID_RUNS, "baselines"]
    reps: list[dict[str, Any]] = []
    for rep in range(repetitions):
        order = runs[rep % len(runs):] + runs[:rep % len(runs)]
        entry: dict[str, Any] = {"order": order}
        for name in order:
            log(f"capture: repetition {rep + 1}/{repetitions}, {name}, {seconds:g} s")
            workdir = ctx.workdir / f"capture-{rep}-{name}"
            if name == "baselines":
                entry |= baselines(ctx, seconds, workdir)
            else:
                entry[name] = ours(ctx, *LUCID_RUNS[name], seconds, workdir)
        for name, (depth, _implementation) in LUCID_RUNS.items():
            o = entry[name]
            o["size_vs_x264"] = o["bytes_per_min"] / entry["x264"]["bytes_per_min"]
            o["size_vs_png"] = o["bytes_per_min"] / entry["png"]["bytes_per_min"]
            o["cpu_vs_x264"] = o["cpu_s_per_min"] / entry["x264"]["cpu_s_per_min"]
            o["cpu_vs_x264_420"] = o["cpu_s_per_min"] / entry["x264_420"]["cpu_s_per_min"]
            o["size_vs_x264_420"] = o["bytes_per_min"] / entry["x264_420"]["bytes_per_min"]
            # Same depth, same repetition: what the native core saves over the reference.
            o["cpu_vs_reference"] = (o["cpu_s_per_min"]
                                     / entry[lucid_key(depth, "reference")]["cpu_s_per_min"])
        reps.append(entry)

    def summary(name: str, key: str) -> dict[str, Any]:
        return spread([r[name][key] for r in reps])

    result: dict[str, Any] = {"seconds": seconds, "repetitions": reps, "summary": {}}
    result["lucid_runs"] = {name: {"depth": d, "implementation": i}
                            for name, (d, i) in LUCID_RUNS.items()}
    for name in LUCID_RUNS:
        result["summary"][name] = {
            key: summary(name, key) for key in (
                "cpu_s_per_min", "capture_cpu_s_per_min", "bytes_per_min",
                "segment_bytes_per_min", "rgb_bytes_per_min", "updates_per_min",
                "size_vs_x264", "size_vs_x264_420", "size_vs_png", "cpu_vs_x264",
                "cpu_vs_x264_420", "cpu_vs_reference", "sessions_per_core",
                "rss_median_mib", "rss_max_mib")}
        result["summary"][name]["stage_cpu_s_per_min"] = {
            stage: spread([r[name]["stage_cpu_s_per_min"][stage] for r in reps])
            for stage in reps[0][name]["stage_cpu_s_per_min"]}
        result["summary"][name]["cpu_before_connected_s"] = summary(name,
                                                                    "cpu_before_connected_s")
    for name in ("x264", "x264_420"):
        result["summary"][name] = {k: summary(name, k) for k in ("bytes_per_min",
                                                                 "cpu_s_per_min")}
        result["summary"][name]["stream"] = reps[0][name]["stream"]
        result["summary"][name]["argv"] = reps[0][name]["argv"]
    result["summary"]["png"] = {k: summary("png", k) for k in ("bytes_per_min",
                                                               "encode_cpu_s_per_min",
                                                               "median_frame_bytes")}
    return result
