"""Where the recorder's CPU goes: a cProfile of a bench.child on a scripted workload.

    .venv/bin/python -m bench.profile --depth 32 --seconds 60 --label before
    .venv/bin/python -m bench.profile --implementation reference --label before
    .venv/bin/python -m bench.profile --implementation native --label after
    .venv/bin/python -m bench.profile --implementation native --workload browser \
        --mode record --seconds 60 --label browser

Runs bench.child capture (capture → chunk → zstd → seal in line, the spec defaults)
under cProfile while the desktop runs `Desktop.run_workload`, and writes the top
functions by own time and by cumulative time to bench/results/profile-LABEL.txt, with
the implementation in use (native or reference) and the load average, and the top
functions by own time as bench/results/profile-LABEL.json (docs/benchmarks.md shows
profile-before and profile-after side by side). --implementation sets LUCID_NATIVE for
the child (default: the environment's choice). --workload NAME drives one of
lucid_devstack.workloads (terminal, browser, ...: the workloads bench.workloads measures)
instead of Desktop.run_workload; --mode record profiles the whole `Recording` pipeline
into MinIO (what bench.workloads measures) instead of the capture child. cProfile slows
pure-Python code more than native code, so read the shares, not the seconds. The
timer is CPU time (time.process_time): waiting for the next update is not counted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import shutil
import sys
from pathlib import Path

from bench.children import Child, ChildRun, run_child
from bench.common import RESULTS_DIR, Context, log, scratch_context
from lucid_devstack.workloads import WORKLOADS, make


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


# --implementation → the child's LUCID_NATIVE (lucid_recorder.native).
IMPLEMENTATIONS = {"native": "1", "reference": "0"}


def _where(file: str, line: int, name: str) -> str:
    """package/module.py:line(function), or the C function's own name."""
    if file == "~":  # a built-in: cProfile names it "<built-in method x>" / "<method 'x' of ...>"
        return name.strip("<>")
    path = Path(file)
    return f"{path.parent.name}/{path.name}:{line}({name})"


def top_functions(stats_file: Path, top: int) -> list[dict[str, object]]:
    """The `top` functions by own time, with their share of the profile's total."""
    stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(own for _cc, _nc, own, _cum, _callers in entries.values()) or 1.0
    rows = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [{"function": _where(file, line, name), "calls": nc,
             "own_s": own, "own_share": own / total, "cumulative_s": cum}
            for (file, line, name), (_cc, nc, own, cum, _callers) in rows]


def run_on_workload(ctx: Context, name: str, mode: str, depth: int, seconds: float,
                    workdir: Path, extra_args: tuple[str, ...],
                    extra_env: dict[str, str] | None) -> ChildRun:
    """The child while workload `name` runs on the context's desktop, as bench.workloads."""
    workload = make(name, ctx.desktop(), workdir / "workload")
    workload.start()
    try:
        child = Child(ctx, mode, depth, workdir / "child", extra_args=extra_args,
                      extra_env=extra_env)
        try:
            child.wait_connected()
            workload.drive(seconds)
            return child.stop()
        finally:
            child.kill()
    finally:
        workload.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--label", default="current")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--implementation", choices=sorted(IMPLEMENTATIONS), default=None,
                        help="native or reference hot path (default: LUCID_NATIVE as set)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default=None,
                        help="drive this lucid_devstack workload (default: "
                             "Desktop.run_workload)")
    parser.add_argument("--mode", choices=("capture", "record"), default="capture",
                        help="bench.child mode: capture (inline chunk/compress/seal) or "
                             "record (the whole Recording pipeline into MinIO)")
    args = parser.parse_args(argv)
    extra_env = ({"LUCID_NATIVE": IMPLEMENTATIONS[args.implementation]}
                 if args.implementation else None)
    with scratch_context("lucid-profile-") as ctx:
        workdir = ctx.workdir
        stats_file = workdir / "capture.prof"
        driver = f"the {args.workload} workload" if args.workload else "Desktop.run_workload"
        log(f"profiling the {args.mode} child at {args.depth} bpp for {args.seconds:g} s "
            f"of {driver}")
        load_before = os.getloadavg()
        profile_args = ("--profile", str(stats_file))
        if args.workload:
            child = run_on_workload(ctx, args.workload, args.mode, args.depth, args.seconds,
                                    workdir, profile_args, extra_env)
        else:
            child = run_child(ctx, args.mode, args.depth, args.seconds, workdir / "child",
                              extra_args=profile_args, extra_env=extra_env)
        load_after = os.getloadavg()
        r = child.result
        per_min = 60 / r["wall_s"]
        # capture counts events and times its inline stages; record counts updates and
        # its CPU from Connected to the end of the process (bench.workloads' measure).
        updates = r["events"] if args.mode == "capture" else r["updates"]
        cpu = (r["cpu_total_s"] if args.mode == "capture"
               else r["cpu_total_s"] - r["cpu_connected_s"])
        stages = r.get("cpu_stage_s", {})
        header = (
            f"# Recorder profile: {args.label}\n"
            f"{args.mode} child, {args.depth} bpp, {args.seconds:g} s of {driver}, "
            f"spec defaults\n"
            f"implementation: {r.get('implementation', 'reference')}\n"
            f"updates: {updates}, CPU s per min (under cProfile): {cpu * per_min:.2f}"
            + (", stage CPU s per min: " if stages else "")
            + ", ".join(f"{k} {v * per_min:.2f}" for k, v in stages.items())
            + f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
        text = report(stats_file, header, args.top)
        out = RESULTS_DIR / f"profile-{args.label}.txt"
        out.write_text(text)
        shutil.copy(stats_file, RESULTS_DIR / f"profile-{args.label}.prof")
        summary = {"label": args.label, "depth": args.depth, "seconds": args.seconds,
                   "mode": args.mode, "workload": args.workload,
                   "implementation": r.get("implementation", "reference"),
                   "updates": updates, "wall_s": r["wall_s"],
                   "cpu_s_per_min_profiled": cpu * per_min,
                   "stage_cpu_s_per_min": {k: v * per_min for k, v in stages.items()},
                   "load_average": [load_before[0], load_after[0]],
                   "top": top_functions(stats_file, args.top)}
        (RESULTS_DIR / f"profile-{args.label}.json").write_text(json.dumps(summary, indent=1))
        log(f"wrote {out}")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
