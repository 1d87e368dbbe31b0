"""The operator-scale section of docs/benchmarks.md: tables, findings and one plot.

Reuses bench.report's formatting and plot helpers; everything stated comes from the
result dict, so the prose cannot drift from the numbers.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from bench.operator_scale_timeline import busiest
from bench.report import _f, _rel, _save, _table, plt

# Components in the CPU table, in this order ("pods" = every recorder pod's processes).
CPU_COLUMNS = ("operator", "kube-apiserver", "etcd", "kube-controller-manager", "kubelet",
               "pods", "bench (watches, kubectl)")


def render(result: dict[str, Any], plots_dir: Path, doc_path: Path) -> str:
    """The Markdown section for `result` (operator_scale.run's dict); saves its plot."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    plot = _plot(result["configs"], plots_dir / "operator_scale.png")
    configs: dict[str, dict[str, Any]] = result["configs"]
    n = result["sessions"]
    compare = result.get("comparison")
    compared = ""
    if compare:
        compare_plot = _plot(compare["configs"], plots_dir / "operator_scale_configs.png")
        compared = f"""
### kopf settings compared, {compare['sessions']:,} sessions each

The same measurement, {compare['sessions']:,} sessions per configuration (a run of
1,000 takes tens of minutes here), one configuration after another, each on a fresh
stack:

{_table(_HEADER, [_row(c) for c in compare['configs'].values()])}
{_cpu_table(compare['configs'])}
![kopf settings compared]({_rel(compare_plot, doc_path)})

{_comparisons(compare['configs'])}
"""
    return f"""## 7. Operator scale: {n:,} RecordingSessions at once (issue #7)

**Method.** For each configuration a fresh local stack (etcd, kube-apiserver,
kube-controller-manager, the local kubelet), the CRD, {result['namespaces']} namespaces with
the three Secrets a session references, and the real `lucid-operator` process. Its
recorder pods run `bench/operator_scale_recorder.sh` instead of the recorder: one `curl`
with the pod's service-account token reports `pipeline.state: Capturing` on its session
(as the recorder does once connected), then `sleep`; on SIGTERM it reports `Finalized`
and exits 0. So RDP is out of the picture and a pod costs one `sh` and one `sleep`.
All {n:,} sessions (spread evenly over the namespaces) are POSTed at once from 16
threads; two watches (sessions, recorder pods) stamp when each pod first exists, when
each pod first runs and when each session first reaches phase `Recording` (Ready and
RecorderRunning True: the status the real recorder leads to). Then one deletecollection
per namespace (what `kubectl delete recordingsessions --all` asks for) and the watches
stamp when each session (its finalizer done) and pod is gone. (`kubectl apply -f` and
`kubectl delete --all` send one object at a time, client-side rate-limited: 200
sessions took over two minutes to apply that way, which would measure kubectl.) CPU
seconds are user+sys per process from the creation to the last `Recording`, then from
the delete to the last object gone ("pods" is every recorder pod's processes, the
kubelet's children); the operator's RSS is sampled twice a second. {result['nproc']} cores,
shared with other work (load averages below): absolute times are noisy; CPU seconds
per session, which do not depend on how long a process waited for a core, travel
better.

{_table(_HEADER, [_row(c) for c in configs.values()])}
{_cpu_table(configs)}
![operator scale]({_rel(plot, doc_path)})

{_findings(result)}
{compared}"""


_HEADER = ['Configuration', 'all pods exist (s)', 'Recording: 50 % / all (s)',
           'sessions/s', 'sessions gone: 50 % / all (s)', 'operator CPU s (up / delete)',
           'operator RSS MiB (peak / end)', 'load avg (1 min, before / after)']


def _ms(value: float | None) -> str:
    return "timeout" if value is None else _f(value)


def _row(c: dict[str, Any]) -> list[str]:
    cpu = c["cpu_s"]
    op = c["operator"]
    load = c["load_average"]
    return [c["label"], _ms(c["pods_exist"]["100%"]),
            f"{_ms(c['recording']['50%'])} / {_ms(c['recording']['100%'])}",
            _f(c["rate_per_s"]["recording"]),
            f"{_ms(c['sessions_gone']['50%'])} / {_ms(c['sessions_gone']['100%'])}",
            f"{_f(cpu['up'].get('operator'))} / {_f(cpu['delete'].get('operator'))}",
            f"{_f(op['rss_mib_peak'], 0)} / {_f(op['rss_mib_end'], 0)}",
            f"{_f(load['before'][0])} / {_f(load['after'][0])}"]


def per_session_ms(c: dict[str, Any], phase: str) -> dict[str, float]:
    """CPU milliseconds per session, by component, in phase "up" or "delete"."""
    return {k: 1000 * v / c["sessions"] for k, v in c["cpu_s"][phase].items()}


def handler_runs(c: dict[str, Any]) -> dict[str, float]:
    """Handler runs per session while coming up, by handler ("start", "refresh")."""
    runs: dict[str, float] = {}
    for key, count in c["operator"]["reconciles_up"].items():
        handler = key.split("/")[0]
        runs[handler] = runs.get(handler, 0.0) + count / c["sessions"]
    return runs


def _cpu_table(configs: dict[str, dict[str, Any]]) -> str:
    """CPU milliseconds per session per component, coming up and deleting."""
    rows = []
    for c in configs.values():
        for phase in ("up", "delete"):
            ms = per_session_ms(c, phase)
            total = sum(ms.values())
            runs = handler_runs(c) if phase == "up" else {}
            rows.append([c["label"] if phase == "up" else "", phase,
                         *[_f(ms.get(k), 0) for k in CPU_COLUMNS], _f(total, 0),
                         ", ".join(f"{k} {_f(v, 2)}" for k, v in sorted(runs.items()))])
    return ("CPU milliseconds **per session**, by process, while the sessions came up "
            "(creation → last `Recording`) and while they were deleted, with the operator's "
            "handler runs per session:\n\n"
            + _table(["Configuration", "phase", *CPU_COLUMNS, "total", "handler runs"], rows))


def _findings(result: dict[str, Any]) -> str:
    configs: dict[str, dict[str, Any]] = result["configs"]
    if "default" not in configs:
        return ""
    base = configs["default"]
    wall = base["up_wall_s"]
    top = busiest(base["cpu_s"]["up"], wall)
    total = sum(base["cpu_s"]["up"].values())
    ms = per_session_ms(base, "up")
    cores = result["nproc"]
    n = result["sessions"]
    lines = [
        f"**What limits throughput.** With the defaults, {n:,} sessions took "
        f"{_ms(base['recording']['100%'])} s to reach Recording ({_f(n / wall, 1)} sessions/s "
        f"on average, {_f(base['rate_per_s']['recording'])} in the middle 80 %); the "
        f"processes measured used {_f(total)} CPU s in those {_f(wall)} s, "
        f"{_f(total / wall, 2)} of the machine's {cores} cores (other work had the rest). "
        "By CPU: " + ", ".join(f"{name} {_f(share, 2)} cores" for name, share in top[:4])
        + f". Per session that is {_f(sum(ms.values()), 0)} CPU ms, of which the API server "
        f"{_f(ms.get('kube-apiserver', 0), 0)} ms, the kubelet "
        f"{_f(ms.get('kubelet', 0), 0)} ms and the operator {_f(ms.get('operator', 0), 0)} ms: "
        f"even on {cores} idle cores that work alone takes {_f(total / cores, 0)} s, an "
        f"average of at most {_f(cores * 1000 / sum(ms.values()), 1)} sessions/s at this "
        "cost per session. The stack is CPU-bound, and the API server is its biggest user: "
        "what speeds it up is fewer API calls per session (such as the repeated start "
        "handler runs below)."]
    operator_cores = base["cpu_s"]["up"].get("operator", 0.0) / wall
    if operator_cores < 0.5:
        lines.append(
            f"The operator itself was not CPU-bound: it averaged {_f(operator_cores, 2)} "
            f"cores. Its handlers are synchronous and run on {_threads(base)} threads, each "
            "blocked on one API call at a time: what bounds it is how many API calls it "
            "has in flight and how long the API server, sharing the machine, takes to "
            "answer them.")
    elif operator_cores > 0.8:
        lines.append(
            f"The operator was CPU-bound: {_f(operator_cores, 2)} cores, about all one "
            "Python interpreter gets (its event loop and handler threads share one GIL), so "
            "more handler threads or per-object workers cannot make it faster.")
    runs = handler_runs(base)
    if runs.get("start", 0) > 1.2:
        text = (f"The operator ran its start handler {_f(runs['start'], 2)} times per session "
                "(once is enough): kopf handled the creation of the same object again. The "
                "handler is idempotent (creation by name, status by merge), so the extra runs "
                "cost API calls and CPU, not correctness.")
        compared = (result.get("comparison") or {}).get("configs") or {}
        once = [c["label"] for c in compared.values()
                if handler_runs(c).get("start", 0) <= 1.1]
        if once:
            text += " It ran once per session with: " + "; ".join(once) + "."
        if any("LUCID_CONSISTENCY_TIMEOUT_SECONDS" in c["settings"]
               and handler_runs(c).get("start", 0) <= 1.1 for c in compared.values()):
            text += (" The cause: after patching an object kopf waits "
                     "`persistence.consistency_timeout` (5 s by default) for its patch to come "
                     "back through the watch; a watch lagging further behind hands it a stale "
                     "copy, which still looks unhandled, and kopf runs the create handler "
                     "again. A 30 s timeout removed the repeats.")
        lines.append(text)
    op = base["operator"]
    if op.get("rss_mib_start") and op.get("rss_mib_peak"):
        text = (f"Operator memory: {_f(op['rss_mib_start'], 0)} MiB RSS before the sessions, "
                f"{_f(op['rss_mib_at_recording'], 0)} MiB with all {n:,} Recording, "
                f"{_f(op['rss_mib_peak'], 0)} MiB at the peak and {_f(op['rss_mib_end'], 0)} "
                "MiB once every session was deleted")
        if op["rss_mib_end"] > 0.9 * op["rss_mib_peak"]:
            text += (": the memory is not given back after the deletion (whether that is "
                     "CPython's allocator keeping freed memory or state kept per object, this "
                     "run does not tell), so size the operator's memory limit for the largest "
                     "burst, not for the sessions running")
        lines.append(text + ".")
    if "comparison" not in result:
        lines.append(_comparisons(configs))
    return "\n\n".join(line for line in lines if line)


def _threads(c: dict[str, Any]) -> str:
    return c["settings"].get("LUCID_HANDLER_THREADS", "16")


def _comparisons(configs: dict[str, dict[str, Any]]) -> str:
    base = configs.get("default")
    if base is None:
        return ""
    comparisons = []
    for name, c in configs.items():
        if name == "default":
            continue
        ours, theirs = c["recording"]["100%"], base["recording"]["100%"]
        gone, gone_base = c["sessions_gone"]["100%"], base["sessions_gone"]["100%"]
        if ours is None or theirs is None:
            comparisons.append(f"{c['label']}: did not finish within the timeout")
            continue
        text = f"{c['label']}: {_f(ours / theirs, 2)}x the default's time to all Recording"
        if gone is not None and gone_base:
            text += f", {_f(gone / gone_base, 2)}x its time to delete"
        theirs_ms, ours_ms = per_session_ms(base, "up"), per_session_ms(c, "up")
        operator = ours_ms.get("operator", 0.0) / max(theirs_ms.get("operator", 0.0), 1e-9)
        text += (f", {_f(sum(ours_ms.values()) / sum(theirs_ms.values()), 2)}x the CPU per "
                 f"session (operator {_f(operator, 2)}x), start handler runs "
                 f"{_f(handler_runs(c).get('start', 0), 2)} per session (default "
                 f"{_f(handler_runs(base).get('start', 0), 2)})")
        comparisons.append(text)
    if not comparisons:
        return ""
    return ("**Against the defaults** (below 1 is faster or cheaper): "
            + "; ".join(comparisons) + ".")


def _plot(configs: dict[str, dict[str, Any]], path: Path) -> Path:
    fig, (up, down, cpu) = plt.subplots(1, 3, figsize=(14, 4.2))
    for i, (name, c) in enumerate(configs.items()):
        color = f"C{i}"
        curves = c["curves"]
        for key, style in (("pods_exist", ":"), ("recording", "-")):
            points = curves[key]
            if points:
                up.step([p[0] for p in points], [p[1] for p in points], where="post",
                         color=color, ls=style, lw=1.2,
                         label=name if key == "recording" else None)
        points = curves["sessions_gone"]
        if points:
            down.step([p[0] for p in points], [p[1] for p in points], where="post",
                      color=color, lw=1.2, label=name)
    up.set_title("Coming up: pods exist (dotted), Recording (solid)")
    up.set_xlabel("seconds since the creation began")
    up.set_ylabel("sessions")
    up.legend(fontsize=7)
    down.set_title("Deleting: sessions gone")
    down.set_xlabel("seconds since the delete")
    down.legend(fontsize=7)
    base = configs.get("default") or next(iter(configs.values()))
    for j, (name, series) in enumerate(base["timeline"].items()):
        if len(series) < 2:
            continue
        t = [s[0] for s in series]
        rates = [(b[2] - a[2]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
                 for a, b in itertools.pairwise(series)]
        cpu.plot(t[1:], _smooth(rates, 4), color=f"C{j}", lw=1, label=name)
    for mark, style in (("recording", "--"), ("delete", ":")):
        if mark in base["marks"]:
            cpu.axvline(base["marks"][mark], color="k", ls=style, lw=0.8)
    cpu.set_title(f"CPU (cores), {base['label'].split(':')[0]}")
    cpu.set_xlabel("s since creation (dashed: all Recording; dotted: delete)")
    cpu.set_ylabel("cores")
    cpu.set_ylim(bottom=0)
    cpu.legend(fontsize=7)
    return _save(fig, path)


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` samples: half-second CPU deltas are jumpy."""
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1):i + 1]
        out.append(sum(chunk) / len(chunk))
    return out
