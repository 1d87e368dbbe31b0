"""Operator scale: N RecordingSessions applied at once, on the local stack, per kopf setting.

Each configuration gets a fresh local stack (etcd, kube-apiserver, controller-manager,
local kubelet), the CRD, ten namespaces with the Secrets a session references, and the
real `lucid-operator` process whose recorder pods run a cheap shell stand-in
(bench/operator_scale_recorder.sh: one curl reporting `pipeline.state: Capturing` with
the pod's token, then a sleep), so that RDP is not the bottleneck. One `kubectl apply`
creates all sessions; watches stamp when each pod first exists and each session first
reaches phase Recording (Ready and RecorderRunning True); one `kubectl delete --all`
then removes them, through the operator's finalizer, and the watches stamp when each
session and pod is gone. Twice a second the operator's RSS and the CPU seconds of the
operator, kube-apiserver, etcd, controller-manager and kubelet are sampled.

Full mode: 1,000 sessions under the defaults, then each configuration at 200 sessions
(see `run`). Quick mode: 100 sessions, two configurations. `render()` turns the result
into the Markdown section and plot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import Context, log
from bench.operator_scale_render import render
from bench.operator_scale_run import Config, namespaces, run_config

__all__ = ["CONFIGS", "QUICK_CONFIGS", "render", "run"]

NAMESPACES = 10
COMPARE_SESSIONS = 200

CONFIGS = [
    Config("default", "defaults: cluster-wide watch, 16 handler threads, no worker limit"),
    Config("per-namespace", "a watch per namespace (LUCID_NAMESPACES, 10 namespaces)",
           per_namespace=True),
    Config("consistency-30", "kopf waits 30 s (not 5 s) for its own patches "
           "(persistence.consistency_timeout)", {"LUCID_CONSISTENCY_TIMEOUT_SECONDS": "30"}),
    Config("threads-64", "64 handler threads (kopf execution.max_workers)",
           {"LUCID_HANDLER_THREADS": "64"}),
    Config("worker-limit-20", "20 per-object workers (kopf queueing.worker_limit)",
           {"LUCID_WORKER_LIMIT": "20"}),
    Config("idle-0.5", "per-object workers exit after 0.5 s idle (kopf queueing.idle_timeout)",
           {"LUCID_WORKER_IDLE_TIMEOUT_SECONDS": "0.5"}),
]
QUICK_CONFIGS = CONFIGS[:2]


def run(ctx: Context) -> dict[str, Any]:
    """Quick: 100 sessions under the defaults and one watch per namespace. Full: 1,000
    sessions under the defaults (the scale run), then every configuration compared at
    COMPARE_SESSIONS sessions each; on a shared 2-core machine one configuration at
    1,000 takes half an hour, so all of them at 1,000 would take hours
    (LUCID_BENCH_OPERATOR_COMPARE_SESSIONS=1000 does it anyway)."""
    total = 100 if ctx.quick else 1000
    # Per phase: generous, since a shared 2-core machine can be far slower than usual.
    timeout = 600.0 if ctx.quick else 2400.0
    spaces = namespaces(NAMESPACES)
    workdir = ctx.workdir / "operator_scale"
    result: dict[str, Any] = {"sessions": total, "namespaces": NAMESPACES,
                              "nproc": len(os.sched_getaffinity(0))}
    scale = QUICK_CONFIGS if ctx.quick else CONFIGS[:1]
    result["configs"] = _run_all(scale, total, spaces, workdir / "scale", timeout)
    if not ctx.quick:
        compare = int(os.environ.get("LUCID_BENCH_OPERATOR_COMPARE_SESSIONS",
                                     COMPARE_SESSIONS))
        only = os.environ.get("LUCID_BENCH_OPERATOR_CONFIGS")
        # For re-running some configurations by hand, e.g. "default,per-namespace".
        configs = [c for c in CONFIGS if not only or c.name in only.split(",")]
        result["comparison"] = {
            "sessions": compare,
            "configs": _run_all(configs, compare, spaces, workdir / "compare", timeout)}
    return result


def _run_all(configs: list[Config], total: int, spaces: list[str], workdir: Path,
             timeout: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for config in configs:
        r = run_config(config, total, spaces, workdir, timeout)
        results[config.name] = r
        log(f"operator_scale[{config.name}]: {total} sessions: pods {r['pods_exist']['100%']} "
            f"s, Recording {r['recording']['100%']} s, gone {r['sessions_gone']['100%']} s, "
            f"operator {r['cpu_s']['up'].get('operator')} CPU s, peak RSS "
            f"{r['operator']['rss_mib_peak']} MiB")
    return results
