"""Where the recorder's CPU goes: a cProfile of the capture child on the scripted workload.

    .venv/bin/python -m bench.profile --depth 32 --seconds 60 --label before

Runs bench.child capture (capture → chunk → zstd → seal in line, the spec defaults)
under cProfile while the desktop runs `Desktop.run_workload`, and writes the top
functions by own time and by cumulative time to bench/results/profile-LABEL.txt, with
the implementation in use (native or reference) and the load average. cProfile slows
pure-Python code more than native code, so read the shares, not the seconds. The
timer is CPU time (time.process_time): waiting for the next update is not counted.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import sys
import tempfile
from pathlib import Path

from bench.children import run_child
from bench.common import RESULTS_DIR, Context, log


def report(stats_file: Path, header: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=out)
    stats.strip_dirs()
    out.write(header)
    out.write(f"\n## Top {top} by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"\n## Top {top * 3} by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(top * 3)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--label", default="current")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="lucid-profile-"))
    ctx = Context(workdir, quick=False)
    try:
        stats_file = workdir / "capture.prof"
        log(f"profiling the capture child at {args.depth} bpp for {args.seconds:g} s")
        load_before = os.getloadavg()
        child = run_child(ctx, "capture", args.depth, args.seconds, workdir / "child",
                          extra_args=("--profile", str(stats_file)))
        load_after = os.getloadavg()
        r = child.result
        per_min = 60 / r["wall_s"]
        header = (
            f"# Recorder profile: {args.label}\n"
            f"capture child, {args.depth} bpp, {args.seconds:g} s of Desktop.run_workload, "
            f"spec defaults\n"
            f"implementation: {r.get('implementation', 'reference')}\n"
            f"updates: {r['events']}, CPU s per min (under cProfile): "
            f"{r['cpu_total_s'] * per_min:.2f}, stage CPU s per min: "
            + ", ".join(f"{k} {v * per_min:.2f}" for k, v in r["cpu_stage_s"].items())
            + f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
        text = report(stats_file, header, args.top)
        out = RESULTS_DIR / f"profile-{args.label}.txt"
        out.write_text(text)
        shutil.copy(stats_file, RESULTS_DIR / f"profile-{args.label}.prof")
        log(f"wrote {out}")
        print(text)
    finally:
        ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
