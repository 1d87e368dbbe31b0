"""The pure arithmetic of bench/operator_scale: time-to-N, curves, rates, CPU deltas."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client

from bench.operator_scale_render import render
from bench.operator_scale_run import _metric_counts, session_manifests
from bench.operator_scale_timeline import (
    busiest,
    cpu_between,
    cumulative,
    milestones,
    rate,
    time_to_count,
)
from lucid_operator.main import configure_kopf, size_connection_pool
from lucid_operator.settings import OperatorSettings


def test_time_to_count_is_the_nth_earliest_stamp_in_any_order() -> None:
    stamps = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert time_to_count(stamps, 1) == 1.0
    assert time_to_count(stamps, 3) == 3.0
    assert time_to_count(stamps, 5) == 5.0
    assert time_to_count(stamps, 0) == 0.0


def test_time_to_count_is_none_when_fewer_got_there() -> None:
    assert time_to_count([1.0, 2.0], 3) is None
    assert time_to_count([], 1) is None


def test_milestones_round_up_and_report_missing_objects() -> None:
    stamps = [float(i) for i in range(1, 1001)]  # the i-th object at i seconds
    assert milestones(stamps, 1000) == {"50%": 500.0, "90%": 900.0, "99%": 990.0,
                                        "100%": 1000.0}
    # 999 of 1,000 arrived: 99 % did (the 990th), all did not.
    partial = milestones(stamps[:999], 1000)
    assert partial["99%"] == 990.0
    assert partial["100%"] is None
    # "90 % of 15" is the 14th object (13.5 rounded up), not the 13th.
    assert milestones([float(i) for i in range(1, 16)], 15, (0.9,)) == {"90%": 14.0}


def test_cumulative_thins_but_keeps_first_last_and_counts() -> None:
    stamps = [i / 10 for i in range(1000, 0, -1)]  # unordered on purpose
    curve = cumulative(stamps, points=100)
    assert curve[0] == (0.1, 1)
    assert curve[-1] == (100.0, 1000)
    assert 100 <= len(curve) <= 102
    times = [t for t, _ in curve]
    counts = [n for _, n in curve]
    assert times == sorted(times)
    assert counts == sorted(counts)
    # Every point says how many stamps lie at or before its time.
    assert all(n == sum(s <= t for s in stamps) for t, n in curve)


def test_cumulative_of_few_stamps_keeps_them_all() -> None:
    assert cumulative([2.0, 1.0, 3.0]) == [(1.0, 1), (2.0, 2), (3.0, 3)]
    assert cumulative([]) == []


def test_rate_ignores_the_ramp_and_the_stragglers() -> None:
    # 10 per second in the middle, a slow start and a long tail.
    stamps = [0.0] + [10 + i / 10 for i in range(98)] + [500.0]
    measured = rate(stamps)
    assert measured is not None
    assert math.isclose(measured, 10.0, rel_tol=0.05)
    assert rate([1.0]) is None
    assert rate([3.0, 3.0, 3.0]) is None


def test_cpu_between_and_busiest() -> None:
    before = {"operator": 10.0, "kube-apiserver": 5.0, "gone": 1.0}
    after = {"operator": 40.0, "kube-apiserver": 65.0, "new": 3.0}
    cpu = cpu_between(before, after)
    assert cpu == {"operator": 30.0, "kube-apiserver": 60.0}
    assert busiest(cpu, 60.0) == [("kube-apiserver", 1.0), ("operator", 0.5)]
    assert busiest(cpu, 0.0) == []


def test_sessions_spread_evenly_over_namespaces() -> None:
    spaces = ["a", "b", "c"]
    manifests = session_manifests(30, spaces, 9000)
    assert len({m["metadata"]["name"] for m in manifests}) == 30
    for space in spaces:
        assert sum(m["metadata"]["namespace"] == space for m in manifests) == 10
    assert all(m["spec"]["target"]["port"] == 9000 for m in manifests)


def test_metric_counts_reads_reconciles_and_errors() -> None:
    text = "\n".join([
        "# HELP lucid_operator_reconciles_total Handler runs, by handler and outcome.",
        'lucid_operator_reconciles_total{handler="start",outcome="ok"} 1000.0',
        'lucid_operator_reconciles_total{handler="finalize",outcome="retry"} 12.0',
        'lucid_operator_reconciles_created{handler="start",outcome="ok"} 1.7e9',
        'lucid_operator_errors_total{handler="refresh"} 2.0',
    ])
    assert _metric_counts(text) == {"start/ok": 1000.0, "finalize/retry": 12.0,
                                    "refresh/raised": 2.0}


@pytest.mark.parametrize("total", [1, 7])
def test_milestones_of_a_single_fraction(total: int) -> None:
    assert milestones([1.0] * total, total, (1.0,)) == {"100%": 1.0}


def test_the_knobs_the_bench_turns_reach_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"LUCID_HANDLER_THREADS": "64", "LUCID_WORKER_LIMIT": "20",
                        "LUCID_WORKER_IDLE_TIMEOUT_SECONDS": "0.5",
                        "LUCID_CONSISTENCY_TIMEOUT_SECONDS": "30"}.items():
        monkeypatch.setenv(name, value)
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.execution.max_workers == 64
    assert settings.queueing.worker_limit == 20
    assert settings.queueing.idle_timeout == 0.5
    assert settings.persistence.consistency_timeout == 30.0


def test_kopf_defaults_stay_when_the_knobs_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LUCID_HANDLER_THREADS", "LUCID_WORKER_LIMIT",
                 "LUCID_WORKER_IDLE_TIMEOUT_SECONDS", "LUCID_CONSISTENCY_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.execution.max_workers == 16
    assert settings.queueing.worker_limit is None
    assert settings.queueing.idle_timeout == 5.0
    assert settings.persistence.consistency_timeout == 5.0


def test_connection_pool_grows_to_the_handler_threads() -> None:
    saved = client.Configuration.get_default_copy()
    try:
        start = client.Configuration()
        start.connection_pool_maxsize = 10
        client.Configuration.set_default(start)
        size_connection_pool(64)
        assert client.Configuration.get_default_copy().connection_pool_maxsize == 68
        size_connection_pool(2)  # never shrinks below the client's own default
        assert client.Configuration.get_default_copy().connection_pool_maxsize == 68
    finally:
        client.Configuration.set_default(saved)


def _fake_config(label: str, scale: float, sessions: int = 10) -> dict[str, Any]:
    stamps = [scale * (i + 1) for i in range(sessions)]
    cpu = {"operator": 2.0 * scale, "kube-apiserver": 4.0 * scale, "etcd": 1.0,
           "kube-controller-manager": 0.5, "kubelet": 1.0, "pods": 1.0,
           "bench (watches, kubectl)": 0.1}
    series = [(t / 2, 100.0, t * 0.1) for t in range(20)]
    return {
        "label": label, "sessions": sessions, "settings": {},
        "pods_exist": milestones(stamps, sessions), "recording": milestones(stamps, sessions),
        "sessions_gone": milestones(stamps, sessions),
        "rate_per_s": {"recording": rate(stamps)},
        "curves": {k: cumulative(stamps) for k in
                   ("pods_exist", "recording", "sessions_gone", "pods_gone")},
        "up_wall_s": stamps[-1], "cpu_s": {"up": cpu, "delete": cpu},
        "operator": {"rss_mib_peak": 120.0, "rss_mib_end": 110.0,
                     "reconciles_up": {"start/ok": 2.0 * sessions, "refresh/ok": 5.0}},
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [2.0, 2.0, 2.0]},
        "timeline": {"operator": series, "kube-apiserver": series},
        "marks": {"recording": 5.0, "delete": 6.0},
    }


def test_render_writes_the_plot_and_states_the_numbers(tmp_path: Path) -> None:
    result = {"sessions": 10, "namespaces": 2, "nproc": 2,
              "configs": {"default": _fake_config("defaults", 1.0),
                          "slow": _fake_config("slower setting", 2.0)}}
    doc = tmp_path / "doc.md"
    text = render(result, tmp_path / "plots", doc)
    plot = tmp_path / "plots" / "operator_scale.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "(plots/operator_scale.png)" in text
    assert "| defaults |" in text and "| slower setting |" in text
    # The slower configuration took twice as long and twice the operator CPU.
    assert "slower setting: 2.00x the default's time to all Recording" in text
    assert "operator 2.00x" in text
    # Default: 2 start runs per session is reported as duplicate handling.
    assert "start handler 2.00 times per session" in text
    # 9.6 CPU s over 10 sessions = 960 ms per session; 2 cores / 0.96 s ≈ 2.1 sessions/s.
    assert "960 CPU ms" in text and "at most 2.1 sessions/s" in text


def test_render_puts_the_compared_settings_in_their_own_section(tmp_path: Path) -> None:
    result = {"sessions": 10, "namespaces": 2, "nproc": 2,
              "configs": {"default": _fake_config("defaults", 1.0)},
              "comparison": {"sessions": 4, "configs": {
                  "default": _fake_config("defaults", 1.0, sessions=4),
                  "fast": _fake_config("faster setting", 0.5, sessions=4)}}}
    text = render(result, tmp_path / "plots", tmp_path / "doc.md")
    scale, compared = text.split("### kopf settings compared, 4 sessions each")
    assert "| faster setting |" not in scale
    assert "| faster setting |" in compared
    assert "faster setting: 0.50x the default's time to all Recording" in compared
    assert (tmp_path / "plots" / "operator_scale_configs.png").read_bytes()[:4] == b"\x89PNG"
