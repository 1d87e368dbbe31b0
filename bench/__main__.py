"""`python -m bench`: run the benchmark suites, store JSON, render docs/benchmarks.md.

    .venv/bin/python -m bench                      # everything, about an hour and a half
    .venv/bin/python -m bench --quick              # short runs, about 20 minutes
    .venv/bin/python -m bench --only pipeline,rss  # some suites (merged into the JSON)
    .venv/bin/python -m bench --report             # re-render from the stored JSON only

Full runs write bench/results/full.json and render docs/benchmarks.md with plots in
docs/benchmarks/; quick runs write bench/results/quick.json and render next to it
(bench/results/quick.md), so a smoke test never replaces the published numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    capture,
    chunking,
    concurrency,
    latency,
    operator_scale,
    pipeline,
    report,
    rss,
)
from bench.common import RESULTS_DIR, Context, log, machine_info, write_json

# rss runs before latency: its live recording gives latency at the default chunk size.
SUITES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "pipeline": pipeline.run,
    "capture": capture.run,
    "rss": rss.run,
    "latency": latency.run,
    "chunking": chunking.run,
    # Last: the longest, and it starts desktops of its own.
    "concurrency": concurrency.run,
    # A stack of its own with 1,000 sessions: run it alone, not next to the others.
    "operator_scale": operator_scale.run,
}


def _suites(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown suite(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(SUITES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="short runs (15-60 s each) to check that everything works")
    parser.add_argument("--only", type=_suites, default=list(SUITES),
                        help=f"comma-separated suites to run: {','.join(SUITES)} (default all)")
    parser.add_argument("--report", action="store_true",
                        help="only re-render the Markdown and plots from the stored JSON")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch directory (default: a new temporary one, removed after)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the scratch directory (logs of desktop, MinIO, children)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    results = RESULTS_DIR / f"{mode}.json"
    if args.report:
        report.render(mode)
        return 0

    data: dict[str, Any] = json.loads(results.read_text()) if results.exists() else {}
    data["mode"] = mode
    data["machine"] = machine_info()
    data.setdefault("suites", {})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lucid-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(workdir, args.quick)
    began = time.monotonic()
    log(f"{mode} run of {', '.join(n for n in SUITES if n in args.only)}; scratch in {workdir}")
    try:
        for name, suite in SUITES.items():
            if name not in args.only:
                continue
            started = time.monotonic()
            result = suite(ctx)
            data["suites"][name] = {
                "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - started, 1),
                "load_average_after": os.getloadavg(),
                "result": result,
            }
            # Saved after every suite: a failure later keeps what was measured.
            write_json(results, data)
            log(f"{name} done in {time.monotonic() - started:.0f} s")
    finally:
        ctx.close()
        if args.workdir is None and not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    data["last_run"] = {"suites": [n for n in SUITES if n in args.only],
                        "duration_s": round(time.monotonic() - began, 1)}
    write_json(results, data)
    report.render(mode)
    log(f"finished in {(time.monotonic() - began) / 60:.1f} min; results in {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
