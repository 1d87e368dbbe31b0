"""Each format lever on and off, on the same recorded update stream (bench.corpus).

    .venv/bin/python -m bench.corpus            # once: record the workloads
    .venv/bin/python -m bench.levers            # re-encode them, print a table

Decodes a workload's corpus back into the exact update stream and encodes it again with
the real RecordingWriter at the spec defaults (segments, keyframes, byte limit), once per
variant, then compresses every segment as the pipeline does (compress_chunk at the
spec's zstd level). Same input, same process: the differences are the levers'.

    v1                      format version 1: no copies
    v2                      version 2 with copies (what the recorder writes)
    v2 predicted keyframes  the same, every keyframe predicted planar (not the default)

Writes bench/results/levers.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, log, write_json
from bench.corpus import CORPUS_DIR
from bench.defaults import KEYFRAME_NS, MAX_SEGMENT_BYTES, SEGMENT_NS, ZSTD_LEVEL
from lucid_recorder import format as fmt
from lucid_recorder.format.encoding import predicted_keyframes
from lucid_recorder.sealing import Codec
from lucid_recorder.sealing.compression import compress_chunk

VARIANTS: dict[str, dict[str, Any]] = {
    "v1": {"version": 1},
    "v2": {"version": 2},
    "v2 predicted keyframes": {"version": 2, "layout_policy": predicted_keyframes},
}


def updates(workload: Path) -> Iterator[fmt.TimedRecord]:
    """The corpus's records in order: the first keyframe, then everything but keyframes."""
    paths = sorted(workload.glob("*.seg"), key=lambda p: int(p.stem))
    if not paths:
        raise SystemExit(f"{workload}: no corpus; run python -m bench.corpus first")
    first = True
    for path in paths:
        for item in fmt.read_segment(path.read_bytes()).records:
            if isinstance(item.record, fmt.Keyframe) and not first:
                continue
            first = False
            yield item


def encode(items: list[fmt.TimedRecord], **writer: Any) -> dict[str, Any]:
    keyframe = items[0].record
    assert isinstance(keyframe, fmt.Keyframe)
    start = items[0].ts_ns
    began = time.process_time()
    w = fmt.RecordingWriter(keyframe.width, keyframe.height, segment_ns=SEGMENT_NS,
                            keyframe_interval_ns=KEYFRAME_NS, max_segment_bytes=MAX_SEGMENT_BYTES,
                            start_ns=start, **writer)
    # The recording starts from the corpus's first picture, as the live one did.
    w.current.framebuffer.pixels[:] = keyframe.rgb
    segments = [s for item in items[1:] if not isinstance(item.record, fmt.Stop)
                for s in w.add(item.ts_ns, item.record)]
    segments.append(w.close())
    encoded = time.process_time()
    stored = sum(len(compress_chunk(s.data, Codec.ZSTD, ZSTD_LEVEL).data) for s in segments)
    compressed = time.process_time()
    minutes = (segments[-1].end_ns - start) / 60e9
    return {"segments": len(segments), "raw_bytes": sum(len(s.data) for s in segments),
            "stored_bytes": stored, "stored_bytes_per_min": stored / minutes,
            "encode_cpu_s_per_min": (encoded - began) / minutes,
            "zstd_cpu_s_per_min": (compressed - encoded) / minutes, "minutes": minutes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.levers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="comma-separated workloads "
                        "(default: every workload in the corpus)")
    args = parser.parse_args(argv)
    names = (args.only.split(",") if args.only
             else sorted(p.name for p in CORPUS_DIR.iterdir() if p.is_dir()))
    results: dict[str, Any] = {}
    print("| workload | variant | segments | raw MB | stored MB/min | ÷ v1 | encode + zstd "
          "CPU s/min |\n|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        items = list(updates(CORPUS_DIR / name))
        results[name] = {}
        for variant, writer in VARIANTS.items():
            log(f"levers: {name}, {variant}")
            r = results[name][variant] = encode(items, **writer)
            base = results[name]["v1"]["stored_bytes"]
            print(f"| {name} | {variant} | {r['segments']} | {r['raw_bytes'] / 1e6:.0f} | "
                  f"{r['stored_bytes_per_min'] / 1e6:.2f} | {r['stored_bytes'] / base:.3f} | "
                  f"{r['encode_cpu_s_per_min'] + r['zstd_cpu_s_per_min']:.2f} |")
    write_json(RESULTS_DIR / "levers.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
