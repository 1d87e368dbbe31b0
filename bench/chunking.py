"""Chunking and size: how `chunking.maxBytes`, the keyframe interval and the zstd level
move the stored size against x264 on one and the same take of the workload.

One take of the scripted workload is captured at 32 bpp into memory while ffmpeg's
x11grab encodes the very same screen to x264 (the issue's command, and 4:2:0 beside it),
so both sides see identical pixels. The take is then replayed through the recorder's own
chunker (RecordingWriter, as `Recording._chunk` drives it) and compressor under each
setting, and the stored bytes per minute are divided by x264's. Sealing adds a fixed
header and a 16-byte tag per chunk, so compressed bytes plus that overhead are what
MinIO stores.

Every setting costs something else, reported next to its size:
- a larger maxBytes holds more of a chunk in memory (writer, compressor, sealer each hold
  a copy) and makes updates wait longer before they are durable (about half a chunk's
  span on average);
- a longer keyframe interval makes seeking inside a chunk decode from further back;
- a higher zstd level costs compression CPU;
- a larger zstd window (window_log) or long-distance matching reaches back further in
  the chunk (to its keyframe, to an earlier repaint) and costs compressor memory; the
  frames stay ordinary zstd frames that every reader decodes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from bench.capture import X264_VARIANTS, x264_alongside
from bench.common import MIB, Context, log, median, record_events
from bench.defaults import KEYFRAME_NS, MAX_SEGMENT_BYTES, ZSTD_LEVEL
from bench.pipeline import chunk
from lucid_recorder.sealing import Codec, compress
from lucid_recorder.sealing.compression import CHUNK_WINDOW_LOG, compressor


@dataclass(frozen=True)
class Setting:
    max_bytes_mib: int
    keyframe_s: int
    zstd_level: int
    max_seconds: int = 60
    # 0: the level's own window; else 2^window_log bytes (capped by zstd at the chunk).
    zstd_window_log: int = 0
    zstd_long: bool = False

    @property
    def label(self) -> str:
        label = (f"maxBytes {self.max_bytes_mib} MiB, keyframes {self.keyframe_s} s, "
                 f"zstd {self.zstd_level}")
        if self.zstd_window_log:
            label += f", window 2^{self.zstd_window_log}"
        if self.zstd_long:
            label += ", long"
        return label

    @property
    def window_log(self) -> int | None:
        return self.zstd_window_log or None


# The recorder's defaults, compression as compress_chunk does it (window 2^25, capped by
# zstd at the chunk, and long-distance matching).
DEFAULT = Setting(MAX_SEGMENT_BYTES // MIB, KEYFRAME_NS // 10**9, ZSTD_LEVEL,
                  zstd_window_log=CHUNK_WINDOW_LOG, zstd_long=True)
MAX_BYTES_MIB = (2, 4, 8, 16, 32, 64)
ZSTD_LEVELS = (1, 3, 6, 9, 12, 15, 19)


def _with(**changes: int | bool) -> Setting:
    return Setting(**{**DEFAULT.__dict__, **changes})


SETTINGS = list(dict.fromkeys([
    DEFAULT,
    *(_with(max_bytes_mib=mib) for mib in MAX_BYTES_MIB),
    *(_with(zstd_level=level) for level in ZSTD_LEVELS),
    _with(max_bytes_mib=64, keyframe_s=60),
    _with(max_bytes_mib=64, keyframe_s=60, zstd_level=3),
    # Issue 15's long-distance lever, taken apart: the level's own window without
    # long-distance matching (compression before it), the wide window alone, and
    # long-distance matching within the level's own window.
    *(_with(zstd_window_log=0, zstd_long=False, zstd_level=level) for level in (3, 9, 12)),
    _with(zstd_long=False),
    _with(zstd_window_log=0),
]))
# Compression before issue 15: the level's own window, no long-distance matching.
BEFORE = _with(zstd_window_log=0, zstd_long=False)


def _take(ctx: Context, seconds: float, workdir: Path) -> tuple[list[Any], dict[str, Any]]:
    """Capture the workload into memory while ffmpeg encodes the same screen."""
    with x264_alongside(ctx, seconds, workdir) as finish:
        events = asyncio.run(record_events(ctx.desktop(), 32, seconds))
        return events, finish()


def measure(events: list[Any], setting: Setting, span_s: float) -> dict[str, Any]:
    """Chunk and compress one take under one setting; sizes per minute of recording."""
    segments = chunk(events, segment_ns=setting.max_seconds * 10**9,
                     max_segment_bytes=setting.max_bytes_mib * MIB,
                     keyframe_ns=setting.keyframe_s * 10**9)
    began = time.process_time()
    compressed = [compress(s.data, Codec.ZSTD, setting.zstd_level, window_log=setting.window_log,
                           long_distance=setting.zstd_long).data for s in segments]
    compress_cpu = time.process_time() - began
    largest = max(len(s.data) for s in segments)
    # What the compressor allocated for the largest chunk (ZSTD_sizeof_CCtx): window
    # buffer, match tables, long-distance table.
    probe = compressor(largest, setting.zstd_level, setting.window_log, setting.zstd_long)
    probe.compress(max(segments, key=lambda s: len(s.data)).data)
    compressor_allocated = probe.memory_size()
    began = time.process_time()
    for payload in compressed:
        zstandard.ZstdDecompressor().decompress(payload)
    decompress_cpu = time.process_time() - began
    spans = [(s.end_ns - s.start_ns) / 1e9 for s in segments]
    per_min = 60 / span_s
    return {
        "setting": setting.__dict__ | {"label": setting.label},
        "chunks": len(segments),
        "segment_bytes": sum(len(s.data) for s in segments),
        "largest_segment_mib": max(len(s.data) for s in segments) / MIB,
        "compressed_bytes": sum(len(c) for c in compressed),
        "compressed_bytes_per_min": sum(len(c) for c in compressed) * per_min,
        "compress_cpu_s_per_min": compress_cpu * per_min,
        "decompress_cpu_s_per_min": decompress_cpu * per_min,
        # The compressor's working memory at this level (window and match tables), as zstd
        # estimates it; not with long-distance matching, where python-zstandard 0.25's
        # estimate dies of SIGFPE (its ldm parameters are left 0): "allocated" has it.
        "compressor_mib": None if setting.zstd_long else
        zstandard.ZstdCompressionParameters.from_level(
            setting.zstd_level, source_size=largest,
            **({"window_log": setting.zstd_window_log} if setting.zstd_window_log else {}),
        ).estimated_compression_context_size() / MIB,
        "compressor_allocated_mib": compressor_allocated / MIB,
        "median_chunk_span_s": median(spans),
    }


def run(ctx: Context) -> dict[str, Any]:
    seconds = 20.0 if ctx.quick else 120.0
    log(f"chunking: one {seconds:g} s take of the 32 bpp workload, x264 on the same screen")
    events, baselines = _take(ctx, seconds, ctx.workdir / "chunking")
    span_s = (events[-1].t_ns - events[0].t_ns) / 1e9
    rows = []
    for setting in SETTINGS:
        log(f"chunking: {setting.label}")
        row = measure(events, setting, span_s)
        for name in X264_VARIANTS:
            row[f"size_vs_{name}"] = (row["compressed_bytes_per_min"]
                                      / baselines[name]["bytes_per_min"])
        rows.append(row)
    return {"seconds": seconds, "recorded_span_s": span_s, "events": len(events),
            "baselines": baselines, "settings": rows}


# -- report ---------------------------------------------------------------------------------


def render(result: dict[str, Any], plots: Path, doc: Path) -> str:
    from bench.report import _f, _mb, _ratio, _rel, _table

    base = result["baselines"]
    rows = []
    for r in result["settings"]:
        rows.append([r["setting"]["label"], str(r["chunks"]), _f(r["median_chunk_span_s"], 1),
                     _mb(r["compressed_bytes_per_min"]), _ratio(r["size_vs_x264"]),
                     _ratio(r["size_vs_x264_420"]), _f(r["compress_cpu_s_per_min"], 2),
                     _f(r["decompress_cpu_s_per_min"], 2), _f(r["compressor_mib"], 1),
                     _f(r.get("compressor_allocated_mib"), 1),
                     _f(r["largest_segment_mib"], 1)])
    return f"""## 5. Chunking, keyframes and zstd level against x264 (issue #7)

**Method.** {_f(result['recorded_span_s'], 0)} s of the scripted workload, captured once
at 32 bpp ({result['events']:,} updates) while ffmpeg encoded the same screen with x264
(`-preset ultrafast -crf 23`, 4:4:4 as the issue states it: {_mb(base['x264']['bytes_per_min'])}
per minute; 4:2:0: {_mb(base['x264_420']['bytes_per_min'])} per minute). The take is then
chunked and compressed by the recorder's own code under each setting (sealing adds well
under 0.1 %). maxSeconds stays at its default of 60 s. CPU is one core's seconds per
recorded minute; "zstd context" is zstd's estimate for the level's parameters,
"allocated" what the compressor really held after compressing the largest chunk
(`ZSTD_sizeof_CCtx`: match tables, window buffer, long-distance table); "largest chunk" is
the uncompressed chunk the recorder holds in memory while it compresses and seals it
(keyframe included). "window 2^N" sets zstd's window_log (zstd caps it at the chunk's
size), "long" turns on long-distance matching: both are ordinary zstd frames, no format
change.

{_table(['Setting', 'Chunks', 'Median chunk (s)', 'Stored per min', '÷ x264',
         '÷ x264 4:2:0', 'Compress CPU s/min', 'Decompress CPU s/min',
         'zstd context MiB', 'allocated MiB', 'Largest chunk MiB'], rows)}
![size against x264 by setting]({_rel(_plot(result, plots), doc)})

{_findings(result)}
"""


def _find(result: dict[str, Any], setting: Setting) -> dict[str, Any] | None:
    for r in result["settings"]:
        if r["setting"]["label"] == setting.label:
            return r
    return None


def _findings(result: dict[str, Any]) -> str:
    from bench.report import _f, _ratio

    default = _find(result, DEFAULT)
    if default is None:
        return ""
    out = [f"At the defaults ({DEFAULT.label}) the recording is "
           f"{_ratio(default['size_vs_x264'])} times the x264 file's size."]
    base = default["compressed_bytes_per_min"]
    for level in (3, 19):
        r = _find(result, _with(zstd_level=level))
        if r is not None and level != DEFAULT.zstd_level:
            change = 100 * (r["compressed_bytes_per_min"] / base - 1)
            out.append(f"zstd level {level} instead makes it {_ratio(r['size_vs_x264'])} "
                       f"times x264 ({_f(abs(change), 0)} % "
                       f"{'larger' if change > 0 else 'smaller'}) for "
                       f"{_f(r['compress_cpu_s_per_min'], 2)} instead of "
                       f"{_f(default['compress_cpu_s_per_min'], 2)} CPU s per minute and a "
                       f"{_f(r.get('compressor_allocated_mib', r['compressor_mib']), 1)} "
                       "MiB held by the compressor.")
    before = _find(result, BEFORE)
    if before is not None and "compressor_allocated_mib" in default:
        change = 100 * (default["compressed_bytes_per_min"] / before["compressed_bytes_per_min"]
                        - 1)
        out.append(f"Against compression before issue 15 ({BEFORE.label}: "
                   f"{_ratio(before['size_vs_x264'])} times x264), the window over the chunk "
                   f"with long-distance matching stores {_f(abs(change), 0)} % "
                   f"{'more' if change > 0 else 'less'} for "
                   f"{_f(default['compress_cpu_s_per_min'], 2)} instead of "
                   f"{_f(before['compress_cpu_s_per_min'], 2)} CPU s per minute and "
                   f"{_f(default['compressor_allocated_mib'], 1)} instead of "
                   f"{_f(before['compressor_allocated_mib'], 1)} MiB held by the compressor.")
    big = _find(result, _with(max_bytes_mib=64))
    if big is not None:
        out.append(f"maxBytes moves the size less: 64 MiB gives "
                   f"{_ratio(big['size_vs_x264'])} times x264, but holds "
                   f"{_f(big['largest_segment_mib'], 0)} MiB in memory per chunk and makes "
                   f"updates wait {_f(big['median_chunk_span_s'], 0)} s instead of "
                   f"{_f(default['median_chunk_span_s'], 0)} s for their chunk to close.")
    return " ".join(out)


def _plot(result: dict[str, Any], plots: Path) -> Path:
    import matplotlib.pyplot as plt

    from bench.report import _save

    by_bytes = [(_find(result, _with(max_bytes_mib=mib)), mib) for mib in MAX_BYTES_MIB]
    by_level = [(_find(result, _with(zstd_level=level)), level) for level in ZSTD_LEVELS]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, points, xlabel in (
            (left, by_bytes, f"chunking.maxBytes (MiB), zstd {DEFAULT.zstd_level}"),
            (right, by_level, f"zstd level, maxBytes {DEFAULT.max_bytes_mib} MiB")):
        xs = [x for r, x in points if r is not None]
        for key, label in (("size_vs_x264", "÷ x264 4:4:4"),
                           ("size_vs_x264_420", "÷ x264 4:2:0")):
            ax.plot(xs, [r[key] for r, _x in points if r is not None], marker="o",
                    label=label)
        ax.axhline(1.0, color="C7", ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("stored size ÷ x264")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    left.set_xscale("log", base=2)
    fig.suptitle("Same take, same screen: Lucid's size against x264")
    return _save(fig, plots / "chunking.png")
