"""Pipeline throughput: chunk → compress → seal → store on a recorded real desktop workload.

Each repetition runs every stage once, sequentially on one thread, on the same recorded
updates, and next to them the machine's raw speeds on the same bytes: zstandard level 3
on the segments, and cryptography's AESGCM on the compressed payloads (and on the
segments). Ratios are taken within a repetition, then the median across repetitions.
A last measurement runs the real, threaded `Recording` over the same updates into MinIO.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psutil
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import MB, Context, log, make_spec, median, spread
from bench.defaults import KEYFRAME_NS, MAX_SEGMENT_BYTES, SEGMENT_NS, ZSTD_LEVEL
from bench.recorder_run import bucket_name, build_recording, replay_fast
from lucid_recorder import format as fmt
from lucid_recorder.pipeline.convert import start_detail, to_records
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing import Codec, Sealer, read_public_key
from lucid_recorder.sealing.compression import CHUNK_WINDOW_LOG, compress_chunk
from lucid_recorder.sealing.keys import keygen
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.storage.from_spec import object_store

T = TypeVar("T")
REPETITIONS = 5


class Meter:
    """CPU seconds of this process plus of MinIO's, and wall seconds, around one call.

    Uploads cost CPU in the MinIO server too; per-core throughput must count it.
    """

    def __init__(self, minio_pid: int | None = None) -> None:
        self.minio = psutil.Process(minio_pid) if minio_pid else None

    def _minio_cpu(self) -> float:
        if self.minio is None:
            return 0.0
        times = self.minio.cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    def run(self, fn: Callable[[], T]) -> tuple[T, float, float]:
        """(result, cpu seconds, wall seconds)"""
        wall, cpu, server = time.perf_counter(), time.process_time(), self._minio_cpu()
        result = fn()
        return (result, time.process_time() - cpu + self._minio_cpu() - server,
                time.perf_counter() - wall)


def chunk(events: list[ev.Event], segment_ns: int = SEGMENT_NS,
          max_segment_bytes: int | None = MAX_SEGMENT_BYTES,
          keyframe_ns: int = KEYFRAME_NS) -> list[fmt.FinishedSegment]:
    """What Recording._chunk does with the updates, without the asyncio plumbing."""
    connected = events[0]
    assert isinstance(connected, ev.Connected)

    def session_ns(t_ns: int) -> int:
        return max(0, t_ns - connected.t_ns)

    writer = fmt.RecordingWriter(connected.width, connected.height, segment_ns=segment_ns,
                                 keyframe_interval_ns=keyframe_ns,
                                 max_segment_bytes=max_segment_bytes)
    writer.add(0, fmt.Start(start_detail(connected)))
    done: list[fmt.FinishedSegment] = []
    last = 0
    for event in events[1:]:
        last = session_ns(event.t_ns)
        for record in to_records(event, session_ns):
            done += writer.add(last, record)
    writer.add(last, fmt.Stop("stopped"))
    done.append(writer.close(last))
    return done


def run(ctx: Context) -> dict[str, Any]:
    recorded = ctx.recorded()
    events = recorded.events
    minio = ctx.minio()
    minio_pid = minio.proc.popen.pid if minio.proc is not None and minio.proc.popen else None
    meter = Meter(minio_pid)
    keys = keygen(ctx.workdir / "pipeline-keys")
    recipient = read_public_key(keys.public)
    spec = make_spec(minio.endpoint, bucket_name("bench-pipeline"))
    rgb_bytes = recorded.rgb_bytes
    reps: list[dict[str, Any]] = []
    for rep in range(REPETITIONS):
        log(f"pipeline: repetition {rep + 1}/{REPETITIONS}")
        segments, chunk_cpu, chunk_wall = meter.run(lambda: chunk(events))
        plain = [s.data for s in segments]
        segment_bytes = sum(map(len, plain))

        payloads, compress_cpu, compress_wall = meter.run(
            lambda plain=plain: [compress_chunk(p, Codec.ZSTD, ZSTD_LEVEL) for p in plain])
        compressed = [p.data for p in payloads]
        compressed_bytes = sum(map(len, compressed))
        # Raw zstd with the parameters compress_chunk uses: what the library costs alone.
        zstd = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters
                                        .from_level(ZSTD_LEVEL, window_log=CHUNK_WINDOW_LOG,
                                                    enable_ldm=1))
        _, zstd_cpu, zstd_wall = meter.run(
            lambda plain=plain, zstd=zstd: [zstd.compress(p) for p in plain])

        # A fresh Sealer per repetition: sequence numbers start at 0 (the key wrap is not timed).
        sealer = Sealer(recipient, f"bench-pipeline-{rep}")
        sealed, seal_cpu, seal_wall = meter.run(
            lambda payloads=payloads, segments=segments, sealer=sealer: [
                sealer.seal(p, s.start_ns, s.end_ns) for p, s in zip(payloads, segments,
                                                                     strict=True)])
        sealed_bytes = sum(len(s.data) for s in sealed)
        aes = AESGCM(os.urandom(32))
        nonce = os.urandom(12)  # a benchmark: the ciphertexts are thrown away
        _, aes_cpu, aes_wall = meter.run(
            lambda compressed=compressed, aes=aes, nonce=nonce: [aes.encrypt(nonce, c, None)
                                                                 for c in compressed])
        _, aes_plain_cpu, aes_plain_wall = meter.run(
            lambda plain=plain, aes=aes, nonce=nonce: [aes.encrypt(nonce, p, None) for p in plain])

        identity = SessionIdentity(namespace="bench", name="pipeline", uid=f"pipeline-{rep}-"
                                   f"{time.time_ns()}")
        store = object_store(spec.storage, identity, minio.access_key, minio.secret_key)
        store.ensure_bucket(True)
        _, store_cpu, store_wall = meter.run(
            lambda sealed=sealed, store=store: [store.put_chunk(s.seq, s.data, s.info)
                                                for s in sealed])

        e2e_cpu = chunk_cpu + compress_cpu + seal_cpu + store_cpu
        e2e_wall = chunk_wall + compress_wall + seal_wall + store_wall
        limit_cpu = zstd_cpu + aes_cpu
        reps.append({
            "segments": len(segments),
            "rgb_bytes": rgb_bytes,
            "segment_bytes": segment_bytes,
            "compressed_bytes": compressed_bytes,
            "sealed_bytes": sealed_bytes,
            "cpu_s": {"chunk": chunk_cpu, "compress": compress_cpu, "seal": seal_cpu,
                      "store": store_cpu, "end_to_end": e2e_cpu, "raw_zstd": zstd_cpu,
                      "raw_aes_compressed": aes_cpu, "raw_aes_segments": aes_plain_cpu},
            "wall_s": {"chunk": chunk_wall, "compress": compress_wall, "seal": seal_wall,
                       "store": store_wall, "end_to_end": e2e_wall, "raw_zstd": zstd_wall,
                       "raw_aes_compressed": aes_wall, "raw_aes_segments": aes_plain_wall},
            # Per core: bytes over CPU seconds (this process + MinIO), each stage on its input.
            "mb_per_s": {
                "chunk_rgb_in": rgb_bytes / chunk_cpu / MB,
                "chunk_segments_out": segment_bytes / chunk_cpu / MB,
                "compress": segment_bytes / compress_cpu / MB,
                "raw_zstd": segment_bytes / zstd_cpu / MB,
                "seal": compressed_bytes / seal_cpu / MB,
                "raw_aes_compressed": compressed_bytes / aes_cpu / MB,
                "raw_aes_segments": segment_bytes / aes_plain_cpu / MB,
                "store": sealed_bytes / store_cpu / MB,
                "store_wall": sealed_bytes / store_wall / MB,
                "end_to_end_segments": segment_bytes / e2e_cpu / MB,
                "end_to_end_rgb": rgb_bytes / e2e_cpu / MB,
                "limit_zstd_then_aes": segment_bytes / limit_cpu / MB,
            },
            "ratios": {
                "compress_vs_raw_zstd": zstd_cpu / compress_cpu,
                "seal_vs_raw_aes": aes_cpu / seal_cpu,
                "end_to_end_vs_raw_zstd": zstd_cpu / e2e_cpu,
                "end_to_end_vs_raw_aes": aes_plain_cpu / e2e_cpu,
                "end_to_end_vs_limit": limit_cpu / e2e_cpu,
            },
        })
    recording_runs = [_recording_once(ctx, events, meter, rep) for rep in range(REPETITIONS)]
    # Every segment opens with a keyframe; how much of the stored size is that?
    whole = chunk(events, segment_ns=10**9 * 86400, max_segment_bytes=None)
    one_segment = sum(len(compress_chunk(s.data, Codec.ZSTD, ZSTD_LEVEL).data) for s in whole)
    return {
        "recorded": {"depth": recorded.depth, "seconds": recorded.seconds,
                     "events": len(events), "rgb_bytes": rgb_bytes},
        "settings": {"segment_seconds": SEGMENT_NS / 1e9, "max_segment_bytes": MAX_SEGMENT_BYTES,
                     "keyframe_seconds": KEYFRAME_NS / 1e9, "zstd_level": ZSTD_LEVEL},
        "repetitions": reps,
        "summary": {
            "mb_per_s": {k: spread([r["mb_per_s"][k] for r in reps]) for k in reps[0]["mb_per_s"]},
            "ratios": {k: spread([r["ratios"][k] for r in reps]) for k in reps[0]["ratios"]},
            "compression_ratio": median([r["segment_bytes"] / r["compressed_bytes"]
                                         for r in reps]),
            "segments": median([r["segments"] for r in reps]),
            "segment_bytes": median([r["segment_bytes"] for r in reps]),
            "compressed_bytes": median([r["compressed_bytes"] for r in reps]),
            "one_segment_compressed_bytes": one_segment,
            "one_segment_bytes": sum(len(s.data) for s in whole),
        },
        "recording": {
            "runs": recording_runs,
            "mb_per_s_segments_per_core": spread([r["mb_per_s_segments_per_core"]
                                                  for r in recording_runs]),
            "mb_per_s_segments_wall": spread([r["mb_per_s_segments_wall"]
                                              for r in recording_runs]),
            "mb_per_s_rgb_per_core": spread([r["mb_per_s_rgb_per_core"]
                                             for r in recording_runs]),
        },
    }


def _recording_once(ctx: Context, events: list[ev.Event], meter: Meter,
                    rep: int) -> dict[str, Any]:
    """The real pipeline (threads, spool with fsync, MinIO), fed the updates as fast as it takes."""
    log(f"pipeline: Recording end to end {rep + 1}/{REPETITIONS}")
    minio = ctx.minio()
    spec = make_spec(minio.endpoint, bucket_name("bench-e2e"))
    recording = build_recording(ctx.workdir / f"pipeline-e2e-{rep}", spec, minio.access_key,
                                minio.secret_key, f"e2e-{rep}")
    _, cpu, wall = meter.run(lambda: asyncio.run(recording.run(replay_fast(events),
                                                               asyncio.Event())))
    capture = recording.stats["capture"]
    return {
        "cpu_s": cpu, "wall_s": wall, "chunks": recording.chunks_stored,
        "segment_bytes": capture.bytes_out, "rgb_bytes": capture.bytes_in,
        "bytes_stored": recording.bytes_stored,
        "mb_per_s_segments_per_core": capture.bytes_out / cpu / MB,
        "mb_per_s_segments_wall": capture.bytes_out / wall / MB,
        "mb_per_s_rgb_per_core": capture.bytes_in / cpu / MB,
    }
