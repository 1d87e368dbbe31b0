"""Recorder memory: RSS of the whole `Recording` pipeline during a long real recording.

bench.child records the live desktop (32 bpp, the spec's default chunking) into MinIO
in a process of its own, while this process drives the scripted workload and samples
the child's RSS once a second with psutil. The same run stamps every update and every
acknowledged chunk, which gives the update-to-durable-object latency at the default
chunk size on real capture (the latency suite reports it).
"""

from __future__ import annotations

from typing import Any

from bench.children import run_child
from bench.common import MIB, Context, log, median, percentile


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
