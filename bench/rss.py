"""Recorder memory: RSS of the whole `Recording` pipeline during a long real recording.

bench.child records the live desktop (32 bpp, the spec's default chunking) into MinIO
in a process of its own, while this process drives the scripted workload and samples
the child's RSS once a second with psutil. The same run stamps every update and every
acknowledged chunk, which gives the update-to-durable-object latency at the default
chunk size on real capture (the latency suite reports it).

To compare a change: run the suite before it, keep that result, then run it after;
docs/benchmarks.md shows both (section 4):

    .venv/bin/python -m bench --only rss
    .venv/bin/python -m bench.rss --keep-as-before "main at 67a5661"
    ... the change ...
    .venv/bin/python -m bench --only rss
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.children import run_child
from bench.common import MIB, RESULTS_DIR, Context, log, median, percentile, write_json

# The run before a change, next to the latest in the report (keep_as_before).
BEFORE = RESULTS_DIR / "rss-before.json"


def run(ctx: Context) -> dict[str, Any]:
    seconds = 60.0 if ctx.quick else 600.0
    log(f"rss: recording the live desktop through Recording into MinIO for {seconds:g} s")
    child = run_child(ctx, "record", 32, seconds, ctx.workdir / "rss", sample_rss=True)
    during = [rss for t, rss in child.rss if child.connected_at_s <= t <= child.stopped_at_s]
    result = child.result
    ctx.shared["rss_latency"] = {**result["latency"], "seconds": seconds,
                                 "source": "live desktop capture (rss run)"}
    return {
        "seconds": seconds,
        "samples": len(during),
        "rss_mib": {
            "median": median(during) / MIB,
            "p95": percentile(during, 95) / MIB,
            "max": max(during) / MIB,
            "min": min(during) / MIB,
            "at_connected": during[0] / MIB,
            "at_end": during[-1] / MIB,
            "max_whole_process": max(rss for _t, rss in child.rss) / MIB,
        },
        # (seconds since the child started, MiB): the plot's data, ~600 points.
        "timeline": [(round(t, 2), round(rss / MIB, 2)) for t, rss in child.rss],
        "connected_at_s": child.connected_at_s,
        "stopped_at_s": child.stopped_at_s,
        "wall_s": result["wall_s"],
        "cpu_s_per_min": result["cpu_recording_s"] / result["wall_s"] * 60,
        "chunks_stored": result["chunks_stored"],
        "bytes_stored": result["bytes_stored"],
        "bytes_stored_per_min": result["bytes_stored"] / result["wall_s"] * 60,
        "updates": result["updates"],
        "latency": result["latency"],
        "probe_mib": result["probe_bytes"] / MIB,
        "implementation": result.get("implementation", "reference"),
    }


def keep_as_before(label: str, mode: str = "full") -> None:
    """Copy the stored rss result of bench/results/MODE.json to rss-before.json."""
    entry = json.loads((RESULTS_DIR / f"{mode}.json").read_text())["suites"]["rss"]
    write_json(BEFORE, {"label": label, **entry})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rss")
    parser.add_argument("--keep-as-before", metavar="LABEL", required=True,
                        help="keep the last stored rss run as the 'before' of a comparison, "
                             "described by LABEL (what ran: a commit, a setting)")
    args = parser.parse_args(argv)
    keep_as_before(args.keep_as_before)
    log(f"kept the last rss run as {BEFORE} ({args.keep_as_before})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
