"""bench.workloads' arithmetic and tables, and the workloads' generated content."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from bench import workloads as bw
from lucid_devstack.workloads import WORKLOADS
from lucid_devstack.workloads.content import document, photo, spreadsheet, web_pages


def recorder(cpu_min: float, bytes_min: float, impl: str) -> dict[str, Any]:
    return {"implementation": impl, "cpu_s_per_min": cpu_min,
            "sessions_per_core": 60 / cpu_min, "bytes_per_min": bytes_min,
            "updates_per_min": 1000.0, "chunks": 3,
            "rss_mib": {"median": 100.0, "max": 130.0},
            "latency_s": {"p50_s": 1.5, "p99_s": 3.0},
            "drive": {"counts": {"steps": 5}}}


def rep(cpu_ref: float, cpu_nat: float, size: float, x264_cpu: float = 4.0,
        x264_bytes: float = 1e6) -> dict[str, Any]:
    entry = {
        "order": list(bw.VARIANTS),
        "reference": recorder(cpu_ref, size, "reference"),
        "native": recorder(cpu_nat, size * 0.9, "native"),
        "baselines": {
            "x264": {"cpu_s_per_min": x264_cpu, "bytes_per_min": x264_bytes, "argv": "ffmpeg"},
            "x264_420": {"cpu_s_per_min": x264_cpu * 0.8, "bytes_per_min": x264_bytes / 2,
                         "argv": "ffmpeg -pix_fmt yuv420p"},
            "png": {"bytes_per_min": 4e6, "encode_cpu_s_per_min": 1.0},
            "drive": {"counts": {"steps": 5}},
        },
    }
    bw.ratios(entry)
    return entry


def test_ratios_are_ours_over_the_baseline_of_the_same_repetition() -> None:
    entry = rep(cpu_ref=8.0, cpu_nat=2.0, size=3e5)
    assert entry["reference"]["cpu_vs_x264"] == 2.0
    assert entry["native"]["cpu_vs_x264"] == 0.5
    assert entry["reference"]["size_vs_x264"] == 0.3
    assert entry["reference"]["size_vs_x264_420"] == 0.6
    assert entry["native_vs_reference"]["cpu"] == 0.25


def test_summary_takes_the_median_of_repetitions() -> None:
    summary = bw.summarize([rep(8.0, 2.0, 3e5), rep(6.0, 1.0, 3e5, x264_cpu=3.0),
                            rep(30.0, 9.0, 3e5)])
    assert summary["reference"]["cpu_vs_x264"]["median"] == 2.0
    assert summary["native"]["cpu_s_per_min"]["median"] == 2.0
    assert summary["native"]["cpu_s_per_min"]["values"] == [2.0, 1.0, 9.0]


def data(names: list[str]) -> dict[str, Any]:
    entry = {"seconds": 120.0, "repetitions": [rep(8.0, 2.0, 3e5)],
             "load_average_after": (1.0, 1.0, 1.0)}
    entry["summary"] = bw.summarize(entry["repetitions"])
    return {"mode": "full", "depth": 32, "repetitions": 1, "x264_argv": "ffmpeg …",
            "machine": {"git_commit": "abc1234"},
            # As stored: the JSON file sorts keys, the rendering restores WORKLOADS order.
            "workloads": {name: entry for name in sorted(names)}}


def test_headline_has_a_size_and_a_cpu_row_per_workload() -> None:
    rows = bw.headline_rows(data(["idle", "terminal"]))
    assert [row[0] for row in rows] == ["terminal: size ÷ x264", "terminal: CPU ÷ x264",
                                        "idle: size ÷ x264", "idle: CPU ÷ x264"]
    assert rows[1][1] == "0.500 native (2.000 reference)"


def test_render_checks_every_goal_per_workload(tmp_path: Path) -> None:
    text = bw.render(data(list(WORKLOADS)), tmp_path, tmp_path / "doc.md")
    for name in WORKLOADS:
        assert f"### {name} (2.0 min per run)" in text
    assert text.index("### terminal") < text.index("### idle")
    glance = text[text.index("### Goals at a glance"):]
    # CPU 0.5 of x264 meets the goal, size 0.27 (native) does, 0.54 of 4:2:0 does not.
    assert "| terminal | 0.500 ✓ | 0.270 ✓ | 0.540 ✗ | 100.0 ✓ | 30.0 ✓ |" in glance
    assert (tmp_path / "workloads.png").stat().st_size > 0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_content_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    assert photo(64, 48, 3).tobytes() == photo(64, 48, 3).tobytes()
    assert photo(64, 48, 3).tobytes() != photo(64, 48, 4).tobytes()
    one, two = web_pages(tmp_path / "a", 5), web_pages(tmp_path / "b", 5)
    assert {k: digest(v) for k, v in one.items()} == {k: digest(v) for k, v in two.items()}
    assert digest(document(tmp_path / "d1", 1)) == digest(document(tmp_path / "d2", 1))
    assert digest(spreadsheet(tmp_path / "s1", 1)) == digest(spreadsheet(tmp_path / "s2", 1))


def test_photo_is_busy_like_a_photograph() -> None:
    image = photo(200, 150, 9)
    # Almost no two horizontal neighbours are equal, unlike screen content.
    pixels = image.load()
    equal = sum(pixels[x, y] == pixels[x + 1, y] for y in range(150) for x in range(199))
    assert equal / (150 * 199) < 0.05


def test_a_failed_workload_is_reported_not_dropped(tmp_path: Path) -> None:
    measured = data(["terminal"])
    measured["workloads"]["office"] = {"seconds": 120.0, "error": "RuntimeError: xrdp died"}
    text = bw.render(measured, tmp_path, tmp_path / "doc.md")
    assert "### office\n\n**Not measured**: the run failed (RuntimeError: xrdp died)" in text
    assert [row[0] for row in bw.headline_rows(measured)] == ["terminal: size ÷ x264",
                                                              "terminal: CPU ÷ x264"]
