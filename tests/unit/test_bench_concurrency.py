"""The concurrency benchmark's knee: which N of a sweep count as sustained, and why not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.concurrency import KneeRule, clearly_broken, find_knee, lag_growth, render

CORES = 2


def point(n: int, rate: float, *, failures: int = 0, rig: float = 0.5,
          machine: float = 0.5, lag: float = 0.0) -> dict[str, Any]:
    return {"n": n, "failures": failures, "updates_per_s_median": rate, "rig_cores": rig,
            "machine_cores": machine, "lag_growth_s": lag}


def test_knee_is_last_n_before_the_rate_falls_below_the_floor() -> None:
    sweep = [point(1, 200), point(2, 195), point(4, 181), point(6, 150), point(8, 190)]
    knee = find_knee(sweep, CORES)
    assert knee["knee_n"] == 4  # 181 / 200 = 90.5 % holds, 150 / 200 = 75 % does not
    assert knee["first_unsustained_n"] == 6
    assert knee["solo_updates_per_s"] == 200
    assert len(knee["reasons"]) == 1 and "75%" in knee["reasons"][0]


def test_a_recovered_point_after_the_break_does_not_move_the_knee() -> None:
    # N=3 is back above the floor, but N=2 already broke: the knee is where it first bent.
    sweep = [point(1, 200), point(2, 100), point(3, 199)]
    assert find_knee(sweep, CORES)["knee_n"] == 1


def test_order_of_points_does_not_matter() -> None:
    sweep = [point(4, 50), point(1, 100), point(2, 95)]
    knee = find_knee(sweep, CORES)
    assert (knee["knee_n"], knee["first_unsustained_n"]) == (2, 4)


def test_a_failed_session_breaks_the_sweep_even_at_full_rate() -> None:
    sweep = [point(1, 100), point(2, 100), point(3, 100, failures=1)]
    knee = find_knee(sweep, CORES)
    assert knee["knee_n"] == 2
    assert knee["reasons"] == ["1 of 3 sessions failed"]


def test_rig_cpu_at_the_ceiling_breaks_but_other_tenants_only_mark_saturation() -> None:
    # The whole machine is busy from N=2 (other tenants), the rig itself only at N=4.
    sweep = [point(1, 100, machine=1.2), point(2, 100, rig=1.0, machine=1.9),
             point(4, 100, rig=1.8, machine=2.0)]
    knee = find_knee(sweep, CORES)
    assert knee["knee_n"] == 2
    assert knee["first_unsustained_n"] == 4
    assert "rig CPU 1.80 of 2 cores" in knee["reasons"][0]
    assert knee["saturation_n"] == 2


def test_growing_upload_lag_breaks_the_sweep() -> None:
    sweep = [point(1, 100, lag=0.3), point(2, 100, lag=5.0)]
    knee = find_knee(sweep, CORES)
    assert knee["knee_n"] == 1
    assert "grew by 5.0 s" in knee["reasons"][0]


def test_several_reasons_are_all_reported() -> None:
    sweep = [point(1, 100), point(2, 10, failures=1, rig=1.9, lag=9.0)]
    assert len(find_knee(sweep, CORES)["reasons"]) == 4


def test_unsustained_solo_has_no_knee() -> None:
    knee = find_knee([point(1, 100, failures=1), point(2, 100)], CORES)
    assert knee["knee_n"] is None
    assert knee["first_unsustained_n"] == 1


def test_all_failed_solo_has_no_rate_and_no_knee() -> None:
    knee = find_knee([point(1, None, failures=1)], CORES)  # type: ignore[arg-type]
    assert knee["knee_n"] is None
    assert knee["reasons"] == ["1 of 1 sessions failed", "no updates captured"]


def test_a_sweep_that_never_breaks_has_its_largest_n_as_knee() -> None:
    knee = find_knee([point(1, 100), point(2, 99), point(3, 98)], CORES)
    assert (knee["knee_n"], knee["first_unsustained_n"], knee["reasons"]) == (3, None, [])


def test_rule_thresholds_are_parameters() -> None:
    sweep = [point(1, 100), point(2, 85)]
    assert find_knee(sweep, CORES)["knee_n"] == 1
    assert find_knee(sweep, CORES, KneeRule(rate_floor=0.8))["knee_n"] == 2


def test_cpu_bound_comes_from_the_solo_rig_cost() -> None:
    assert find_knee([point(1, 100, rig=0.25), point(2, 50)], CORES)["cpu_bound_n"] == 7
    assert find_knee([point(1, 100, rig=0.0)], CORES)["cpu_bound_n"] is None


def test_a_sweep_must_start_solo() -> None:
    with pytest.raises(ValueError, match="solo"):
        find_knee([point(2, 100)], CORES)


def test_lag_growth_compares_last_third_with_first() -> None:
    assert lag_growth([1.0, 1.0]) == 0.0
    assert lag_growth([0.5, 0.6, 0.5, 0.7, 0.6, 0.5]) == pytest.approx(0.0, abs=0.06)
    assert lag_growth([0.5, 0.5, 1.0, 2.0, 4.0, 8.0]) == pytest.approx(5.5)


def test_sweep_stops_one_point_past_the_break_or_on_collapse() -> None:
    assert not clearly_broken([point(1, 100), point(2, 95)], CORES)
    assert not clearly_broken([point(1, 100), point(2, 80)], CORES)
    assert clearly_broken([point(1, 100), point(2, 80), point(3, 70)], CORES)
    assert clearly_broken([point(1, 100), point(2, 40)], CORES)
    assert clearly_broken([point(1, 100), point(4, 100, failures=3)], CORES)


def _measured(n: int, rate: float) -> dict[str, Any]:
    spread = {"median": rate, "min": rate, "max": rate, "n": n, "values": [rate] * n}
    session = {"error": None, "updates_per_s": rate}
    return {**point(n, rate), "desktops": min(n, 3), "cpu_s_per_min": spread,
            "cpu_us_per_update": spread, "updates_per_s": spread, "bytes_per_hour": spread,
            "updates_per_step": rate / 2, "chunk_latency_p50_s": 0.4,
            "chunk_latency_max_s": 0.9, "event_age_p99_ms": 80.0, "connect_s": 5.0,
            "load_average": (1.0, 1.0, 1.0), "sessions": [session] * n,
            "cores": {"recorders": 0.2 * n, "xvnc": 0.05, "xrdp": 0.02, "minio": 0.01,
                      "driver": 0.08, "x_clients": 0.01}}


def test_render_writes_a_plot_and_states_the_knee(tmp_path: Path) -> None:
    points = [_measured(1, 200.0), _measured(2, 190.0), _measured(4, 120.0)]
    result = {"seconds": 60.0, "settle_s": 3.0, "desktops": 3, "points": points,
              "knee": find_knee(points, CORES), "recorder_only_sessions_per_core": 5.0}
    doc = tmp_path / "benchmarks.md"
    text = render(result, tmp_path / "plots", doc)
    plot = tmp_path / "plots" / "concurrency.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](plots/concurrency.png)" in text
    assert "The knee is at **N = 2**" in text
    assert "60% of the solo rate" in text
    # One table row per N in each of the two tables.
    assert sum(line.startswith("| 4 |") for line in text.splitlines()) == 2
