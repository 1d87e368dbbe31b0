"""Measure pixel layouts under zstd: `python -m lucid_recorder.format.layout_study`.

This is how the layout policy in docs/format.md was chosen. Every row encodes the same
records with the real RecordingWriter and differs only in the layout policy, so the
numbers isolate the pixel layout. Run it again on real captures when they exist.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from .encoding import (
    INTERLEAVED,
    PLANAR,
    XOR_INTERLEAVED,
    XOR_PLANAR,
    LayoutPolicy,
    adaptive_layout,
    fixed_layout,
)
from .recording import RecordingWriter
from .records import Rect, TimedRecord

POLICIES: dict[str, LayoutPolicy] = {
    "interleaved": fixed_layout(INTERLEAVED),
    "planar": fixed_layout(PLANAR),
    "xor interleaved": fixed_layout(XOR_INTERLEAVED),
    "xor planar": fixed_layout(XOR_PLANAR),
    "adaptive (chosen)": adaptive_layout,
}


@dataclass
class Result:
    policy: str
    raw: int
    zstd3: int
    zstd3_long: int
    seconds: float


def encode(records: Sequence[TimedRecord], width: int, height: int, segment_ns: int,
           policy: LayoutPolicy) -> list[bytes]:
    writer = RecordingWriter(width, height, segment_ns=segment_ns, layout_policy=policy)
    segments = [s.data for r in records for s in writer.add(r.ts_ns, r.record)]
    segments.append(writer.close().data)
    return segments


def measure(records: Sequence[TimedRecord], width: int, height: int,
            segment_s: float) -> list[Result]:
    plain = zstandard.ZstdCompressor(level=3)
    # Long-distance matching reaches back past level 3's 2 MiB window (to a keyframe or
    # an earlier repaint); shown for the pipeline, which owns compression.
    long = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters
                                    .from_level(3, window_log=27, enable_ldm=True))
    results = []
    for name, policy in POLICIES.items():
        started = time.perf_counter()
        segments = encode(records, width, height, int(segment_s * 1e9), policy)
        elapsed = time.perf_counter() - started
        results.append(Result(name, sum(map(len, segments)),
                              sum(len(plain.compress(s)) for s in segments),
                              sum(len(long.compress(s)) for s in segments), elapsed))
    return results


def main(argv: list[str] | None = None) -> int:
    from lucid_recorder.player.synthetic import SyntheticDesktop

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--segment-seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1024x768")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    for wallpaper in ("flat", "photo"):
        for tiles in (True, False):
            desk = SyntheticDesktop(width, height, tiles=tiles, wallpaper=wallpaper)
            records = list(desk.session(args.seconds))
            rects = sum(isinstance(r.record, Rect) for r in records)
            print(f"\n{wallpaper} wallpaper, {'64x64 tiles' if tiles else 'bounding rects'}: "
                  f"{args.seconds:.0f} s, {rects} rects, {args.size}, "
                  f"{args.segment_seconds:.0f} s segments")
            print(f"{'layout':20} {'raw bytes':>12} {'zstd-3':>11} {'zstd-3 long':>12} "
                  f"{'encode s':>9}")
            for r in measure(records, width, height, args.segment_seconds):
                print(f"{r.policy:20} {r.raw:12,} {r.zstd3:11,} {r.zstd3_long:12,} "
                      f"{r.seconds:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
