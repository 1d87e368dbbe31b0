"""Recorder work in a process of its own, so its CPU time and RSS are measured alone.

    python -m bench.child capture --depth 32 --out result.json
    python -m bench.child record --depth 32 --workdir DIR --out result.json [--timeline]

The parent passes the desktop and MinIO coordinates in the environment (BENCH_*), waits
for the line CONNECTED on stdout, drives the desktop workload, then sends SIGTERM. The
child finishes its recording and writes a JSON result.

capture: the capture source, with each update chunked (RecordingWriter), compressed (at
the spec's zstd level) and sealed in line, as the pipeline does but without spool or
upload: CPU and bytes per minute of the stored form. record: the whole `Recording`
pipeline into MinIO, for RSS (sampled by the parent) and update-to-durable-object
latency. With --timeline, record also writes every update's capture stamp (monotonic ns,
int64, to updates.i64) and returns each chunk's acknowledgement, so a parent running
several children can count what each captured inside one common measurement window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import signal
import sys
import time
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import make_spec, percentile
from bench.defaults import (
    FRAME_NS,
    IDLE_SECONDS,
    KEYFRAME_NS,
    MAX_SEGMENT_BYTES,
    SEGMENT_NS,
    ZSTD_LEVEL,
)
from bench.recorder_run import LatencyProbe, bucket_name, build_recording
from lucid_recorder import allocator, native
from lucid_recorder import format as fmt
from lucid_recorder.pipeline.convert import start_detail, to_records
from lucid_recorder.pipeline.recording import Recording
from lucid_recorder.rdp import CaptureConfig, TlsConfig, TlsMode, capture
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing import Codec, Sealer, keygen, read_public_key
from lucid_recorder.sealing.compression import compress_chunk
from lucid_recorder.target import idle_seconds


def _config(depth: int, idle_seconds: float | None) -> CaptureConfig:
    env = os.environ
    tls = TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256=env["BENCH_RDP_FINGERPRINT"])
    return CaptureConfig(host="127.0.0.1", port=int(env["BENCH_RDP_PORT"]),
                         username=env["BENCH_RDP_USER"], password=env["BENCH_RDP_PASSWORD"],
                         width=int(env["BENCH_WIDTH"]), height=int(env["BENCH_HEIGHT"]),
                         color_depth=depth, tls=tls, idle_seconds=idle_seconds)


def _announce_connected() -> None:
    print("CONNECTED", flush=True)


def _stop_on_sigterm() -> asyncio.Event:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    return stop


class InlineSealer:
    """Chunk → compress → seal on the capture's own thread, timing each step in CPU seconds."""

    def __init__(self, connected: ev.Connected, workdir: Path,
                 keep_segments: Path | None = None) -> None:
        keys = keygen(workdir / "keys")
        # bench.corpus keeps the plain segments, to re-encode them offline (bench.levers).
        self.keep_segments = keep_segments
        self.sealer = Sealer(read_public_key(keys.public), "bench-capture")
        self.origin = connected.t_ns
        self.writer = fmt.RecordingWriter(connected.width, connected.height,
                                          segment_ns=SEGMENT_NS, keyframe_interval_ns=KEYFRAME_NS,
                                          max_segment_bytes=MAX_SEGMENT_BYTES,
                                          frame_interval_ns=FRAME_NS)
        self.cpu = {"chunk": 0.0, "compress": 0.0, "seal": 0.0}
        self.bytes = {"rgb": 0, "segments": 0, "compressed": 0, "sealed": 0}
        self.segments = 0
        self.writer.add(0, fmt.Start(start_detail(connected)))

    def session_ns(self, t_ns: int) -> int:
        return max(0, t_ns - self.origin)

    def add(self, event: ev.Event) -> None:
        began = time.process_time()
        if isinstance(event, ev.Rect):
            self.bytes["rgb"] += len(event.rgb)
        ts = self.session_ns(event.t_ns)
        if isinstance(event, ev.Idle):
            done = self.writer.flush()
        else:
            done = [d for record in to_records(event, self.session_ns)
                    for d in self.writer.add(ts, record)]
        self.cpu["chunk"] += time.process_time() - began
        for segment in done:
            self._store(segment)

    def close(self, end_ns: int) -> None:
        began = time.process_time()
        end = max(self.writer.current.last_ts_ns, self.session_ns(end_ns))
        self.writer.add(end, fmt.Stop("stopped"))
        last = self.writer.close(end)
        self.cpu["chunk"] += time.process_time() - began
        self._store(last)

    def _store(self, segment: fmt.FinishedSegment) -> None:
        self.segments += 1
        self.bytes["segments"] += len(segment.data)
        if self.keep_segments is not None:
            (self.keep_segments / f"{segment.seq}.seg").write_bytes(segment.data)
        began = time.process_time()
        payload = compress_chunk(segment.data, Codec.ZSTD, ZSTD_LEVEL)
        compressed = time.process_time()
        sealed = self.sealer.seal(payload, segment.start_ns, segment.end_ns)
        self.cpu["compress"] += compressed - began
        self.cpu["seal"] += time.process_time() - compressed
        self.bytes["compressed"] += len(payload.data)
        self.bytes["sealed"] += len(sealed.data)


async def run_capture(depth: int, workdir: Path,
                      keep_segments: Path | None = None) -> dict[str, Any]:
    stop = _stop_on_sigterm()
    stats: dict[str, int] = {}
    counts = {"events": 0, "rects": 0}
    cpu_start = time.process_time()
    stream = capture(_config(depth, IDLE_SECONDS), stats=stats)
    connected = await asyncio.wait_for(anext(stream), 60)
    assert isinstance(connected, ev.Connected), connected
    # From here on the clocks run: connecting (and importing Python) is a per-session
    # cost, reported apart from the cost per minute recorded.
    cpu_connected = time.process_time()
    wall_connected = time.monotonic()
    inline = InlineSealer(connected, workdir, keep_segments)
    _announce_connected()

    async def consume() -> None:
        async for event in stream:
            if isinstance(event, ev.Disconnected):
                return
            if not isinstance(event, ev.Idle):
                counts["events"] += 1
            counts["rects"] += isinstance(event, ev.Rect)
            inline.add(event)

    reader = asyncio.create_task(consume())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
    wall_stopped, stop_ns, cpu_stopped = time.monotonic(), time.monotonic_ns(), time.process_time()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await stream.aclose()
    cpu_closed = time.process_time()
    # The last segment is part of what was recorded; closing the connection is not.
    inline.close(stop_ns)
    cpu_final = time.process_time()
    return {
        "depth": depth,
        "session_bpp": connected.bpp,
        "wall_s": wall_stopped - wall_connected,
        "cpu_total_s": (cpu_stopped - cpu_connected) + (cpu_final - cpu_closed),
        "cpu_stage_s": inline.cpu,
        "cpu_before_connected_s": cpu_connected - cpu_start,
        "cpu_teardown_s": cpu_closed - cpu_stopped,
        "bytes": inline.bytes,
        "segments": inline.segments,
        "capture_stats": stats,
        **counts,
    }


class EventAges:
    """How old each update is, in ms, when the pipeline takes it from the capture.

    The capture stamps an update when it is decoded; a pipeline that falls behind lets
    decoded updates wait in the capture's queue, and this age grows.
    """

    def __init__(self) -> None:
        self.ms: array[float] = array("d")

    async def watch(self, source: AsyncIterator[ev.Event]) -> AsyncIterator[ev.Event]:
        async with contextlib.aclosing(source) as stream:  # type: ignore[type-var]
            async for event in stream:
                if not isinstance(event, ev.Connected | ev.Disconnected | ev.Idle):
                    self.ms.append((time.monotonic_ns() - event.t_ns) / 1e6)
                yield event

    def summary(self) -> dict[str, Any]:
        values = list(self.ms)
        return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
                "max": max(values) if values else None}


def timeline(probe: LatencyProbe, ages: EventAges, recording: Recording, bucket: str,
             workdir: Path) -> dict[str, Any]:
    """What the concurrency suite needs beyond totals: every update's stamp, chunk acks."""
    updates_file = workdir / "updates.i64"
    with updates_file.open("wb") as out:
        probe.event_ns.tofile(out)
    now = time.monotonic_ns()
    # Session time to monotonic time: the recording's timeline starts at a fixed offset.
    offset = now - recording.session_ns(now)
    chunks = [[ack / 1e9, (ack - (end + offset)) / 1e9, (end - start) / 1e9]
              for start, end, ack in sorted(probe.acks)]
    return {"updates_file": str(updates_file), "bucket": bucket, "event_age_ms": ages.summary(),
            # (ack time in monotonic seconds, chunk end → ack seconds, chunk seconds)
            "chunks": chunks}


async def run_record(depth: int, workdir: Path, with_timeline: bool = False) -> dict[str, Any]:
    env = os.environ
    stop = _stop_on_sigterm()
    # BENCH_MAX_FPS: the spec's maxFps (bench.workloads' every_update runs set 0).
    max_fps = int(env["BENCH_MAX_FPS"]) if "BENCH_MAX_FPS" in env else None
    spec = make_spec(env["BENCH_MINIO_ENDPOINT"], bucket_name("bench-rss"), depth=depth,
                     width=int(env["BENCH_WIDTH"]), height=int(env["BENCH_HEIGHT"]),
                     max_fps=max_fps)
    recording = build_recording(workdir, spec, env["BENCH_MINIO_ACCESS"],
                                env["BENCH_MINIO_SECRET"], "rss")
    probe = LatencyProbe()
    marks: dict[str, float] = {}

    def connected() -> None:
        marks["cpu_connected"] = time.process_time()
        marks["wall_connected"] = time.monotonic()
        _announce_connected()

    def stopping() -> None:
        marks["wall_stopped"] = time.monotonic()
        marks["cpu_stopped"] = time.process_time()

    stop_watch = asyncio.create_task(stop.wait())
    stop_watch.add_done_callback(lambda _task: stopping())
    ages = EventAges()
    source = probe.watch(capture(_config(depth, idle_seconds(spec))), connected)
    with probe.patched():
        await recording.run(ages.watch(source) if with_timeline else source, stop)
    # The capture ends on its own when the RDP server drops the session (xrdp crashed,
    # say): the recording is over before any SIGTERM, and the parent is told so.
    source_ended = "wall_stopped" not in marks
    if source_ended:
        stopping()
    extra = ({"timeline": timeline(probe, ages, recording, spec.storage.bucket, workdir)}
             if with_timeline else {})
    return {
        **extra,
        "depth": depth,
        "wall_s": marks["wall_stopped"] - marks["wall_connected"],
        "cpu_recording_s": marks["cpu_stopped"] - marks["cpu_connected"],
        # Up to the end of the process, so the last chunk's compress, seal and upload
        # after the stop count too (bench.workloads).
        "cpu_connected_s": marks["cpu_connected"],
        "cpu_total_s": time.process_time(),
        "implementation": native.implementation(),
        "source_ended_before_stop": source_ended,
        "chunks_stored": recording.chunks_stored,
        "bytes_stored": recording.bytes_stored,
        "updates": recording.updates,
        "latency": probe.summary(recording),
        # The probe's stamps live in this process too; its RSS includes them.
        "probe_bytes": probe.event_ns.itemsize * len(probe.event_ns) + 100 * len(probe.acks),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("mode", choices=["capture", "record"])
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeline", action="store_true",
                        help="record: also write update stamps and chunk acks (concurrency)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write cProfile stats of the whole run to this file (bench.profile)")
    parser.add_argument("--keep-segments", type=Path, default=None,
                        help="capture: also write every plain segment to DIR/SEQ.seg "
                             "(bench.corpus)")
    args = parser.parse_args(argv)
    # As lucid-recorder's main does, so that RSS and CPU are the recorder's.
    allocator.return_large_blocks(os.environ)
    if args.mode == "capture":
        if args.keep_segments is not None:
            args.keep_segments.mkdir(parents=True, exist_ok=True)
        work = run_capture(args.depth, args.workdir, args.keep_segments)
    else:
        work = run_record(args.depth, args.workdir, args.timeline)
    if args.profile is None:
        result = asyncio.run(work)
    else:
        # CPU time, not wall time: the wait for the next update is not work.
        profiler = cProfile.Profile(time.process_time)
        result = profiler.runcall(asyncio.run, work)
        profiler.dump_stats(args.profile)
    # Which hot path ran (LUCID_NATIVE, lucid_recorder.native): benchmarks compare both.
    result["implementation"] = native.implementation()
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
