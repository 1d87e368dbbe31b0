"""Concurrent recording: how many live sessions this machine sustains, and where it bends.

For each N of a sweep (1, 2, 3, 4, 6, ... until it clearly breaks; quick: 1, 2, 4), N
bench.child processes each run the whole `Recording` pipeline (live RDP capture at the
spec's defaults: 1024x768, 32 bpp, 60 s / 8 MiB chunks, zstd level from the spec) into MinIO, spread
round-robin over up to DESKTOPS local Xvnc + xrdp desktops. Every desktop with a session
runs the capture suite's scripted workload (Desktop.run_workload) in a thread of this
process. Once all sessions are connected and the workloads have run for SETTLE_S, a
common window of `seconds` is measured:

- per session: CPU (psutil user+sys of the child) per minute, updates captured per
  second (from the child's stamp of every update), stored bytes per hour (what MinIO
  acknowledged over the session's recorded time, cross-checked against a bucket
  listing), each chunk's latency from its end to its acknowledged upload, and how long
  decoded updates waited before the pipeline took them;
- the rig: CPU of Xvnc, xrdp (with its per-connection forks), the X clients, MinIO and
  this process (the workload's xdotool calls included), and the machine's busy cores
  (psutil.cpu_times), which also counts whatever else runs on the machine.

The knee is computed by find_knee (see KneeRule): the largest N up to which every N of
the sweep was sustained. Everything here runs on one shared 2-core machine, so the
desktops' own cost (Xvnc, xrdp, the workload) competes with the recorders; on a real
cluster the desktops live elsewhere.
"""

from __future__ import annotations

import bisect
import math
import os
import statistics
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
import psutil

from bench.children import Child, ChildRun
from bench.common import MB, Context, log, median, percentile, spread
from bench.defaults import ZSTD_LEVEL
from lucid_devstack.desktop import Desktop
from lucid_devstack.proc import StackError

SWEEP = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20)
QUICK_SWEEP = (1, 2, 4)
# The full sweep always goes this far, so the curve shows even when it bends early.
MIN_SWEEP_N = 6
DESKTOPS = 3
SETTLE_S = 3.0
# Twelve Python children importing and connecting at once on two cores take a while.
CONNECT_TIMEOUT_S = 240.0
DEPTH = 32


# -- the knee (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KneeRule:
    """When N concurrent sessions count as sustained; all must hold.

    - no session failed (did not connect, crashed, or its desktop's workload failed);
    - the median session captures at least `rate_floor` of the solo session's updates
      per second (a recorder that falls behind makes xrdp coalesce updates, and a
      starved desktop produces fewer);
    - the rig (recorders, Xvnc, xrdp, X clients, MinIO, workload driver) uses less than
      `cpu_ceiling` of the machine's cores; other tenants' load is not counted here;
    - no session's chunk latency grew by more than `lag_growth_s` from the first to
      the last third of the window (uploads falling behind without bound).
    """

    rate_floor: float = 0.9
    cpu_ceiling: float = 0.9
    lag_growth_s: float = 2.0


def lag_growth(latencies: Sequence[float]) -> float:
    """Median chunk latency of the last third minus that of the first (0 below 3 chunks)."""
    if len(latencies) < 3:
        return 0.0
    third = len(latencies) // 3
    return statistics.median(latencies[-third:]) - statistics.median(latencies[:third])


def unsustained(point: dict[str, Any], solo_rate: float, cores: int,
                rule: KneeRule) -> list[str]:
    """Why `point` is not sustained under `rule`; empty when it is."""
    reasons = []
    if point["failures"]:
        reasons.append(f"{point['failures']} of {point['n']} sessions failed")
    rate = point["updates_per_s_median"]
    if not rate:
        reasons.append("no updates captured")
    elif solo_rate <= 0:
        reasons.append("no solo rate to compare with")
    elif rate < rule.rate_floor * solo_rate:
        reasons.append(f"median update rate {rate / solo_rate:.0%} of the solo rate "
                       f"(floor {rule.rate_floor:.0%})")
    if point["rig_cores"] >= rule.cpu_ceiling * cores:
        reasons.append(f"rig CPU {point['rig_cores']:.2f} of {cores} cores "
                       f"(ceiling {rule.cpu_ceiling:.0%})")
    if point["lag_growth_s"] > rule.lag_growth_s:
        reasons.append(f"chunk latency grew by {point['lag_growth_s']:.1f} s over the window")
    return reasons


def find_knee(points: Sequence[dict[str, Any]], cores: int,
              rule: KneeRule | None = None) -> dict[str, Any]:
    """The knee of a sweep: the largest N such that it and every smaller N were sustained.

    `points` need keys n, failures, updates_per_s_median, rig_cores, lag_growth_s and
    machine_cores; the one with n == 1 sets the solo rate. knee_n is None when even one
    session was not sustained; first_unsustained_n is None when the sweep never broke.
    saturation_n is the first N at which the machine as a whole (other tenants included)
    was busy for at least cpu_ceiling of its cores. cpu_bound_n is what the solo point's
    rig CPU predicts: how many such sessions fit under the ceiling, were the cores the
    rig's alone (a check that other tenants' load cannot move).
    """
    rule = rule or KneeRule()
    ordered = sorted(points, key=lambda p: p["n"])
    if not ordered or ordered[0]["n"] != 1:
        raise ValueError("a sweep starts with a solo session (n=1)")
    solo_rate = ordered[0]["updates_per_s_median"] or 0.0
    knee: int | None = None
    first_bad: int | None = None
    reasons: list[str] = []
    for point in ordered:
        reasons = unsustained(point, solo_rate, cores, rule)
        if reasons:
            first_bad = point["n"]
            break
        knee = point["n"]
    saturated = [p["n"] for p in ordered if p["machine_cores"] >= rule.cpu_ceiling * cores]
    solo_rig = ordered[0]["rig_cores"]
    return {"knee_n": knee, "first_unsustained_n": first_bad,
            "cpu_bound_n": (math.floor(rule.cpu_ceiling * cores / solo_rig)
                            if solo_rig > 0 else None),
            "reasons": reasons if first_bad is not None else [],
            "saturation_n": saturated[0] if saturated else None,
            "solo_updates_per_s": solo_rate, "cores": cores, "rule": asdict(rule)}


def clearly_broken(points: Sequence[dict[str, Any]], cores: int) -> bool:
    """Stop the sweep one point past the first unsustained N, or at once on collapse."""
    knee = find_knee(points, cores)
    bad = knee["first_unsustained_n"]
    if bad is None:
        return False
    last = max(points, key=lambda p: p["n"])
    collapsed = last["failures"] > last["n"] // 2 or (
        last["updates_per_s_median"] or 0.0) < 0.5 * knee["solo_updates_per_s"]
    return collapsed or last["n"] > bad


# -- measuring one N ---------------------------------------------------------------------------


class _Workload(threading.Thread):
    """One desktop's scripted workload, in a thread so all desktops change at once."""

    def __init__(self, desktop: Desktop, seconds: float) -> None:
        super().__init__(daemon=True)
        self.desktop = desktop
        self.seconds = seconds
        self.steps = 0
        self.elapsed_s = 0.0
        self.error: str | None = None

    def run(self) -> None:
        began = time.monotonic()
        try:
            self.steps = self.desktop.run_workload(self.seconds)
        except (StackError, OSError) as exc:  # a failure of this desktop's sessions
            self.error = f"{type(exc).__name__}: {exc}"
        self.elapsed_s = time.monotonic() - began


def _rig(ctx: Context, desktops: Sequence[Desktop],
         children: Sequence[Child | None]) -> dict[str, list[psutil.Process]]:
    """The processes whose CPU the window accounts for, by role."""
    roles: dict[str, list[psutil.Process]] = {
        "recorders": [], "xvnc": [], "xrdp": [], "x_clients": [], "minio": [], "driver": []}
    for desktop in desktops:
        for name, pid in desktop.process_groups().items():
            role = name if name in ("xvnc", "xrdp") else "x_clients"
            process = psutil.Process(pid)
            # xrdp forks a process per connection; xterm runs `cat`.
            roles[role] += [process, *process.children(recursive=True)]
    minio = ctx.minio().proc
    if minio is not None and minio.popen is not None:
        roles["minio"].append(psutil.Process(minio.popen.pid))
    roles["driver"].append(psutil.Process())
    roles["recorders"] = [psutil.Process(c.pid) for c in children if c is not None]
    return roles


def _cpu_s(process: psutil.Process, with_children: bool) -> float | None:
    try:
        t = process.cpu_times()
    except psutil.Error:
        return None
    own = t.user + t.system
    # Only this process reaps short-lived children (xdotool) inside the window.
    return own + t.children_user + t.children_system if with_children else own


def _busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine; guest time is already inside user."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + t.irq + t.softirq + t.steal
    return busy, busy + t.idle + t.iowait


def _sample(rig: dict[str, list[psutil.Process]]) -> dict[str, Any]:
    return {"t": time.monotonic(), "machine": _busy_s(),
            "cpu": {role: [_cpu_s(p, role == "driver") for p in procs]
                    for role, procs in rig.items()}}


def _delta(before: dict[str, Any], after: dict[str, Any], role: str) -> list[float | None]:
    return [None if a is None or b is None else a - b
            for b, a in zip(before["cpu"][role], after["cpu"][role], strict=True)]


def _bucket_bytes(ctx: Context, bucket: str) -> int:
    client = ctx.minio().client()
    return sum(o.size or 0 for o in client.list_objects(bucket, recursive=True))


def _session(ctx: Context, run: ChildRun, cpu_s: float | None, window: tuple[float, float]
             ) -> dict[str, Any]:
    r = run.result
    t = r["timeline"]
    stamps = array("q")
    updates_file = Path(t["updates_file"])
    with updates_file.open("rb") as data:
        stamps.frombytes(data.read())
    updates_file.unlink()
    t0, t1 = window
    # The capture's clock never goes backwards, so the stamps are sorted.
    in_window = (bisect.bisect_right(stamps, int(t1 * 1e9))
                 - bisect.bisect_left(stamps, int(t0 * 1e9)))
    seconds = t1 - t0
    # Chunks acknowledged inside the window: the last one, cut by the stop, is not steady state.
    latencies = [lat for ack, lat, _len in t["chunks"] if t0 <= ack <= t1]
    return {
        "cpu_s_per_min": None if cpu_s is None else cpu_s / seconds * 60,
        # CPU per update: what a recorder costs for the work it was given, which the
        # per-minute figure hides when a loaded desktop produces fewer updates.
        "cpu_us_per_update": None if cpu_s is None or not in_window else cpu_s / in_window * 1e6,
        "updates_per_s": in_window / seconds,
        "bytes_stored": r["bytes_stored"],
        "bytes_per_hour": r["bytes_stored"] / r["wall_s"] * 3600,
        "bucket_bytes": _bucket_bytes(ctx, t["bucket"]),
        "recorded_s": r["wall_s"],
        "chunks_stored": r["chunks_stored"],
        "chunks_in_window": len(latencies),
        "chunk_latency_s": {"p50": percentile(latencies, 50) if latencies else None,
                            "max": max(latencies) if latencies else None},
        "lag_growth_s": lag_growth(latencies),
        "event_age_ms": t["event_age_ms"],
        "whole_process_cpu_s": run.rusage_cpu_s,
        "error": None,
    }


def measure(ctx: Context, n: int, desktops: Sequence[Desktop], seconds: float,
            workdir: Path) -> dict[str, Any]:
    """N sessions over the desktops, all recording through one common window."""
    active = list(desktops[:min(n, len(desktops))])
    placement = [i % len(active) for i in range(n)]
    errors: dict[int, str] = {}
    children: list[Child | None] = []
    began = time.monotonic()
    try:
        for i in range(n):
            children.append(Child(ctx, "record", DEPTH, workdir / f"session-{i}",
                                  desktop=active[placement[i]], extra_args=("--timeline",)))
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        for i, child in enumerate(children):
            assert child is not None
            try:
                child.wait_connected(max(0.0, deadline - time.monotonic()))
            except RuntimeError as exc:
                errors[i] = str(exc)
                child.kill()
                children[i] = None
        connect_s = time.monotonic() - began
        rig = _rig(ctx, active, children)
        workloads = [_Workload(d, SETTLE_S + seconds) for d in active]
        for w in workloads:
            w.start()
        time.sleep(SETTLE_S)
        before = _sample(rig)
        time.sleep(seconds)
        after = _sample(rig)
        load = os.getloadavg()
        for w in workloads:
            w.join(timeout=120)
            if w.is_alive():
                w.error = "the workload did not finish within 120 s of the window's end"
        for child in children:
            if child is not None:
                child.terminate()
        runs: dict[int, ChildRun] = {}
        for i, child in enumerate(children):
            if child is None:
                continue
            try:
                runs[i] = child.finish()
            except RuntimeError as exc:
                errors[i] = str(exc)
    finally:
        for child in children:
            if child is not None:
                child.kill()
    window = (before["t"], after["t"])
    recorder_cpu = iter(_delta(before, after, "recorders"))
    sessions: list[dict[str, Any]] = []
    for i in range(n):
        cpu = next(recorder_cpu) if children[i] is not None else None
        failed = errors.get(i) or workloads[placement[i]].error
        if failed is None and i in runs:
            sessions.append({"desktop": placement[i], **_session(ctx, runs[i], cpu, window)})
        else:
            sessions.append({"desktop": placement[i], "error": failed or "no result"})
    return _summarize(n, sessions, workloads, before, after, load, connect_s)


def _summarize(n: int, sessions: list[dict[str, Any]], workloads: Sequence[_Workload],
               before: dict[str, Any], after: dict[str, Any], load: tuple[float, ...],
               connect_s: float) -> dict[str, Any]:
    seconds = after["t"] - before["t"]
    ok = [s for s in sessions if s["error"] is None]
    deltas = {role: _delta(before, after, role) for role in before["cpu"]}
    cores = {role: sum(d for d in values if d is not None) / seconds
             for role, values in deltas.items()}
    busy = (after["machine"][0] - before["machine"][0]) / seconds

    def stat(key: str) -> dict[str, Any] | None:
        values = [s[key] for s in ok if s[key] is not None]
        return spread(values) if values else None

    rates = [s["updates_per_s"] for s in ok]
    steps = [w.steps / w.elapsed_s if w.elapsed_s else 0.0 for w in workloads]
    p50s = [s["chunk_latency_s"]["p50"] for s in ok if s["chunk_latency_s"]["p50"] is not None]
    maxes = [s["chunk_latency_s"]["max"] for s in ok if s["chunk_latency_s"]["max"] is not None]
    return {
        "n": n, "desktops": len(workloads), "window_s": seconds, "connect_s": connect_s,
        "sessions": sessions,
        "failures": len(sessions) - len(ok),
        "cpu_s_per_min": stat("cpu_s_per_min"),
        "cpu_us_per_update": stat("cpu_us_per_update"),
        "updates_per_s": stat("updates_per_s"),
        "updates_per_s_median": median(rates) if rates else None,
        "bytes_per_hour": stat("bytes_per_hour"),
        "workload_steps_per_s": steps,
        "updates_per_step": (median(rates) / median(steps)
                             if rates and steps and median(steps) else None),
        "chunk_latency_p50_s": median(p50s) if p50s else None,
        "chunk_latency_max_s": max(maxes) if maxes else None,
        "event_age_p99_ms": max((s["event_age_ms"]["p99"] for s in ok), default=None),
        "lag_growth_s": max((s["lag_growth_s"] for s in ok), default=0.0),
        "cores": cores,
        # Processes that exited inside the window: their CPU is missing from `cores`.
        "processes_lost": {role: sum(d is None for d in values)
                           for role, values in deltas.items() if None in values},
        "rig_cores": sum(cores.values()),
        "machine_cores": busy,
        "load_average": load,
    }


# -- the suite -----------------------------------------------------------------------------------


def run(ctx: Context) -> dict[str, Any]:
    seconds = 20.0 if ctx.quick else 60.0
    sweep = QUICK_SWEEP if ctx.quick else SWEEP
    cores = len(os.sched_getaffinity(0))
    desktops = ctx.desktops(DESKTOPS)
    ctx.minio()
    points: list[dict[str, Any]] = []
    began = time.monotonic()
    for n in sweep:
        log(f"concurrency: {n} session(s) over {min(n, DESKTOPS)} desktop(s), {seconds:g} s "
            f"(load {os.getloadavg()[0]:.2f})")
        point = measure(ctx, n, desktops, seconds, ctx.workdir / f"concurrency-{n}")
        points.append(point)
        log(f"concurrency: {n}: {point['updates_per_s_median'] or 0:.1f} updates/s per session, "
            f"rig {point['rig_cores']:.2f} cores, machine {point['machine_cores']:.2f}, "
            f"{point['failures']} failed")
        if not ctx.quick and n >= MIN_SWEEP_N and clearly_broken(points, cores):
            break
    result: dict[str, Any] = {"seconds": seconds, "desktops": DESKTOPS, "depth": DEPTH,
                              "settle_s": SETTLE_S, "points": points,
                              "knee": find_knee(points, cores)}
    if not ctx.quick:
        # Solo again at the end: how far the machine drifted during the sweep.
        log("concurrency: solo again, for drift")
        again = measure(ctx, 1, desktops, seconds, ctx.workdir / "concurrency-solo-again")
        result["solo_again"] = again
    solo = points[0]
    solo_recorder = solo["cores"]["recorders"]
    result["recorder_only_sessions_per_core"] = 1 / solo_recorder if solo_recorder else None
    result["sweep_s"] = time.monotonic() - began
    return result


# -- rendering ------------------------------------------------------------------------------------


def render(result: dict[str, Any], plots_dir: Path, doc_path: Path) -> str:
    """The Markdown section for docs/benchmarks.md, with its plot saved under plots_dir."""
    # Imported here, not at the top: bench.report may import this module.
    from bench.report import _f, _rel, _table
    plots_dir.mkdir(parents=True, exist_ok=True)
    plot = _plot(result, plots_dir / "concurrency.png")
    points = result["points"]
    solo = points[0]
    session_rows, rig_rows = [], []
    for p in points:
        session_rows.append([
            str(p["n"]), str(p["desktops"]), _spread(p["cpu_s_per_min"], 2),
            _spread(p["cpu_us_per_update"], 0), _spread(p["updates_per_s"], 0),
            _share(p["updates_per_s_median"], solo["updates_per_s_median"]),
            _share(p["updates_per_step"], solo["updates_per_step"]),
            _f(p["bytes_per_hour"]["median"] / MB, 0) if p["bytes_per_hour"] else "-",
            f"{_f(p['chunk_latency_p50_s'], 2)} / {_f(p['chunk_latency_max_s'], 2)}",
            _f(p["event_age_p99_ms"], 0), str(p["failures"]),
        ])
        c = p["cores"]
        rig_rows.append([
            str(p["n"]), _f(c["recorders"], 2), _f(c["xvnc"] + c["xrdp"], 2), _f(c["minio"], 2),
            _f(c["driver"] + c["x_clients"], 2), _f(p["rig_cores"], 2),
            _f(p["machine_cores"], 2), _f(p["load_average"][0], 1), _f(p["connect_s"], 0),
        ])
    sessions = _table(["N", "desktops", "CPU s/min", "CPU µs/update", "updates/s", "vs solo",
                       "updates per workload step vs solo", "MB/h stored",
                       "chunk latency p50 / max s", "update wait p99 ms", "failed"],
                      session_rows)
    rig = _table(["N", "recorders", "Xvnc + xrdp", "MinIO", "driver + X clients", "rig",
                  "whole machine", "load 1 min", "connect s"], rig_rows)
    return f"""## 6. Concurrent recording (issue #7)

**Method.** For each N, N real recorders (`Recording` in its own process, live RDP capture
at the spec's defaults: 1024x768, 32 bpp, 60 s / 8 MiB chunks, zstd {ZSTD_LEVEL}, into
MinIO) record at once, spread round-robin over {result['desktops']} local Xvnc + xrdp desktops;
every desktop with a session runs the scripted workload. After all sessions are connected and
{_f(result['settle_s'], 0)} s of workload, one common {_f(result['seconds'], 0)} s window is
measured: each recorder's CPU (psutil user+sys), the updates it captured, the bytes MinIO
acknowledged per hour recorded, each chunk's latency from its end to its acknowledged
upload, and the longest wait of a decoded update before the pipeline took it ("update
wait", p99 of the worst session). "Rig" is every process of the setup (recorders, Xvnc,
xrdp and its per-connection forks, xclock/xterm, MinIO, the workload driver with its
xdotool calls); "machine" is the whole machine's busy time, other tenants included. A
workload step is one typed line and one clock move: updates per step, against solo, tells
a recorder that falls behind (xrdp then merges updates for it) from a desktop that
itself slowed down (its xdotool calls and X server compete for the same two cores).

Per session (median, with the min-max over sessions where there are several):

{sessions}
Cores busy during the window, by role (all sessions together):

{rig}
![Concurrent recording]({_rel(plot, doc_path)})

{_findings(result)}
"""


def _spread(s: dict[str, Any] | None, digits: int) -> str:
    from bench.report import _f
    if s is None:
        return "-"
    if s["n"] == 1:
        return _f(s["median"], digits)
    return f"{_f(s['median'], digits)} ({_f(s['min'], digits)}-{_f(s['max'], digits)})"


def _share(value: float | None, solo: float | None) -> str:
    return f"{value / solo:.0%}" if value is not None and solo else "-"


def _findings(result: dict[str, Any]) -> str:
    from bench.report import _f
    knee = result["knee"]
    rule = knee["rule"]
    points = {p["n"]: p for p in result["points"]}
    out = [f"**Knee.** N is sustained when no session failed, the median session captures "
           f"at least {rule['rate_floor']:.0%} of the solo session's "
           f"{_f(knee['solo_updates_per_s'], 0)} updates/s, the rig uses less than "
           f"{rule['cpu_ceiling']:.0%} of the {knee['cores']} cores, and no session's chunk "
           f"latency grows by more than {_f(rule['lag_growth_s'], 0)} s across the window. "]
    if knee["first_unsustained_n"] is None:
        out.append(f"Every N up to {max(points)} was sustained: the knee lies beyond the "
                   "sweep.")
    elif knee["knee_n"] is None:
        out.append("Not even one session was sustained: " + "; ".join(knee["reasons"]) + ".")
    else:
        out.append(f"The knee is at **N = {knee['knee_n']}**; at N = "
                   f"{knee['first_unsustained_n']}: " + "; ".join(knee["reasons"]) + ".")
    bad = points.get(knee["first_unsustained_n"])
    if bad is not None and bad["updates_per_step"] and points[1]["updates_per_step"]:
        kept = bad["updates_per_step"] / points[1]["updates_per_step"]
        rate = (bad["updates_per_s_median"] or 0.0) / (knee["solo_updates_per_s"] or 1.0)
        if kept >= rule["rate_floor"] > rate:
            out.append(f" At N = {bad['n']} the recorders still captured {kept:.0%} of the "
                       "solo updates per workload step: the desktops slowed down (fewer "
                       "workload steps a second), not the recorders.")
        elif kept < rule["rate_floor"]:
            out.append(f" At N = {bad['n']} the recorders captured only {kept:.0%} of the "
                       "solo updates per workload step: they fell behind and xrdp merged "
                       "updates.")
    if knee["saturation_n"] is not None:
        out.append(f" The machine as a whole (other tenants included) was busy for at least "
                   f"{rule['cpu_ceiling']:.0%} of its cores from N = {knee['saturation_n']}.")
    if knee.get("cpu_bound_n") is not None:
        out.append(f" By CPU alone, the solo session's rig cost "
                   f"({_f(points[1]['rig_cores'], 2)} cores with its desktop, at the "
                   f"{_f(knee['solo_updates_per_s'], 0)} updates/s it ran at) predicts "
                   f"{knee['cpu_bound_n']} such sessions under the ceiling on an otherwise "
                   "idle machine; a faster desktop costs proportionally more.")
    per_core = result.get("recorder_only_sessions_per_core")
    if per_core:
        out.append(f" The solo recorder alone used {_f(1 / per_core, 3)} cores, i.e. "
                   f"{_f(per_core, 1)} such sessions per core if the desktops ran elsewhere.")
    again = result.get("solo_again")
    if again and again["updates_per_s_median"] and knee["solo_updates_per_s"]:
        out.append(f" Solo again after the sweep: "
                   f"{again['updates_per_s_median'] / knee['solo_updates_per_s']:.0%} of the "
                   f"first solo update rate, {_f(again['cpu_s_per_min']['median'], 2)} CPU "
                   "s/min (drift of the shared machine).")
    return "".join(out)


def _plot(result: dict[str, Any], path: Path) -> Path:
    from bench.report import _save
    points = result["points"]
    knee = result["knee"]
    ns = [p["n"] for p in points]
    fig, (cpu_ax, rate_ax, total_ax) = plt.subplots(1, 3, figsize=(14, 4))
    cpu = [p["cpu_s_per_min"] for p in points]
    cpu_ax.errorbar(ns, [c["median"] if c else float("nan") for c in cpu],
                    yerr=[[c["median"] - c["min"] if c else 0 for c in cpu],
                          [c["max"] - c["median"] if c else 0 for c in cpu]],
                    marker="o", capsize=3)
    cpu_ax.set_ylim(bottom=0)
    cpu_ax.set_ylabel("CPU s per minute recorded (solid)")
    cpu_ax.set_title("Per-session recorder CPU")
    # Per update the cost stays put while the per-minute figure follows the desktop's pace.
    per_update = cpu_ax.twinx()
    per_update.plot(ns, [p["cpu_us_per_update"]["median"] if p["cpu_us_per_update"]
                         else float("nan") for p in points], color="C1", ls="--", marker="s")
    per_update.set_ylim(bottom=0)
    per_update.set_ylabel("CPU µs per update (dashed)", color="C1")
    solo = knee["solo_updates_per_s"] or float("nan")
    rel = [[s["updates_per_s"] / solo for s in p["sessions"] if s["error"] is None]
           for p in points]
    rate_ax.plot(ns, [median(r) if r else float("nan") for r in rel], marker="o",
                 label="median session")
    rate_ax.plot(ns, [min(r) if r else float("nan") for r in rel], ls=":", marker=".",
                 label="worst session")
    rate_ax.axhline(knee["rule"]["rate_floor"], color="C3", ls="--", lw=1,
                    label=f"floor {knee['rule']['rate_floor']:.0%}")
    rate_ax.set_ylim(0, max(1.2, *(max(r) for r in rel if r)))
    rate_ax.set_ylabel("updates/s relative to solo")
    rate_ax.set_title("Per-session update rate")
    rate_ax.legend(fontsize=8, loc="lower left")
    groups = {"recorders": ["recorders"], "Xvnc + xrdp": ["xvnc", "xrdp"],
              "MinIO": ["minio"], "driver + X clients": ["driver", "x_clients"]}
    bottom = [0.0] * len(points)
    for label, roles in groups.items():
        values = [sum(p["cores"][r] for r in roles) for p in points]
        total_ax.bar([str(n) for n in ns], values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    total_ax.plot([str(n) for n in ns], [p["machine_cores"] for p in points], color="k",
                  marker="o", label="whole machine")
    total_ax.axhline(knee["cores"], color="C3", ls="--", lw=1, label=f"{knee['cores']} cores")
    total_ax.set_xlabel("concurrent sessions N")
    total_ax.set_ylabel("cores busy")
    total_ax.set_title("Total CPU")
    total_ax.set_ylim(0, max(knee["cores"], *bottom, *(p["machine_cores"] for p in points))
                      * 1.35)
    total_ax.legend(fontsize=7, loc="upper left", ncol=2)
    for ax in (cpu_ax, rate_ax):
        ax.set_xlabel("concurrent sessions N")
        ax.set_xticks(ns)
        ax.grid(True, alpha=0.3)
    if knee["knee_n"] is not None:
        for ax in (cpu_ax, rate_ax):
            ax.axvline(knee["knee_n"], color="C2", ls="--", lw=1)
        total_ax.axvline(ns.index(knee["knee_n"]), color="C2", ls="--", lw=1)
        rate_ax.annotate(f" knee N={knee['knee_n']}", (knee["knee_n"],
                         rate_ax.get_ylim()[1] * 0.93), color="C2", fontsize=8)
    return _save(fig, path)
