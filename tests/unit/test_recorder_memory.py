"""What the recorder holds on to between chunks: nothing of a chunk once it has moved on.

A chunk is megabytes; a reference that outlives its stage (a loop variable, an
over-allocated buffer) keeps that much memory per chunk in flight or between chunks.
Counted with sys.getrefcount and tracemalloc, not timed and not measured as RSS.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.api import RecordingSessionSpec
from lucid_recorder import allocator
from lucid_recorder.pipeline.recording import Recording, Segment
from lucid_recorder.pipeline.stages import END, Stage
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing import SessionIdentity
from lucid_recorder.sealing.compression import Codec, compress, compress_chunk, right_sized
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import ObjectStore, SessionLayout, Spool, make_client, resume

SESSION = SessionIdentity(namespace="team", name="rec", uid="4a7e6c1e-2222-4a5c-8e9f-0011223344")
W, H = 64, 48


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_stage_keeps_no_item_while_it_waits_for_the_next():
    async def scenario() -> tuple[int, int]:
        inbox: asyncio.Queue[object] = asyncio.Queue()
        outbox: asyncio.Queue[object] = asyncio.Queue()

        async def work(item: bytes) -> list[bytes]:
            return [item[:1] + item[1:]]  # a new object, as compression makes one

        stage = Stage("compress", work, inbox, outbox)
        task = asyncio.create_task(stage.run())
        segment = os.urandom(1 << 16)
        await inbox.put(segment)
        result = await outbox.get()
        await _settle()  # the stage is back at inbox.get(), waiting
        counts = sys.getrefcount(segment), sys.getrefcount(result)
        await inbox.put(END)
        await task
        assert await outbox.get() is END
        return counts

    # Only this frame's name and getrefcount's argument: the stage holds neither.
    assert asyncio.run(scenario()) == (2, 2)


def _recording(tmp_path: Path) -> Recording:
    spec = RecordingSessionSpec.model_validate({
        "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "rdp-login"}},
        "chunking": {"maxSeconds": 1},
        "storage": {"endpoint": "127.0.0.1:9", "bucket": "unit-bucket",
                    "credentialsSecretRef": {"name": "minio-creds"}, "tls": {"enabled": False}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
    })
    store = ObjectStore(make_client("127.0.0.1:9", "unused", "unused", secure=False),
                        "unit-bucket", SessionLayout("recordings", SESSION))
    recipient = X25519PrivateKey.generate().public_key()
    spool = Spool(tmp_path / "spool", 1 << 24, SESSION)
    return Recording(spec, spool, store, resume(spool, None, recipient), recipient,
                     StatusReporter(lambda body: None, interval=60.0))


def test_the_chunker_keeps_no_segment_it_has_queued(tmp_path: Path):
    recording = _recording(tmp_path)
    waiting = asyncio.Event()

    async def source() -> AsyncIterator[ev.Event]:
        t0 = time.monotonic_ns()
        yield ev.Connected(t0, W, H, 32, "00" * 32, ev.TlsMode.INSECURE)
        yield ev.Rect(t0, 0, 0, W, H, os.urandom(W * H * 3))
        # Two seconds later on the capture's clock: past maxSeconds, the segment closes.
        yield ev.Rect(t0 + 2 * 10**9, 0, 0, 8, 8, bytes(8 * 8 * 3))
        # As the capture says once the screen rests: the frame held at maxFps is written.
        yield ev.Idle(t0 + 2 * 10**9)
        waiting.set()
        await asyncio.Event().wait()  # nothing more, until the recording stops

    async def scenario() -> int:
        out: asyncio.Queue[object] = asyncio.Queue()
        stop = asyncio.Event()
        chunker = asyncio.create_task(recording._chunk(source(), out, stop))
        segment = await out.get()
        assert isinstance(segment, Segment)
        await waiting.wait()
        await _settle()
        data = segment.data
        del segment
        count = sys.getrefcount(data)
        stop.set()
        await chunker
        return count

    assert asyncio.run(scenario()) == 2


def test_a_compressed_payload_holds_no_worst_case_buffer():
    plaintext = bytes(range(256)) * (1 << 14)  # 4 MiB that compress to a few KiB
    tracemalloc.start()
    try:
        payload = compress_chunk(plaintext, Codec.ZSTD, 9)
        blocks = [trace.size for trace in tracemalloc.take_snapshot().traces]
    finally:
        tracemalloc.stop()
    assert len(payload.data) < 64 * 1024
    # ZstdCompressor.compress alone leaves a block of ZSTD_compressBound (over 4 MiB).
    assert max(blocks) < len(plaintext) // 2, max(blocks)
    assert compress(plaintext, Codec.ZSTD, 3).data == compress(plaintext, Codec.ZSTD, 3).data


def test_right_sized_is_a_copy_with_the_same_bytes():
    data = os.urandom(1000)
    copy = right_sized(data)
    assert copy == data
    assert copy is not data


def _fake_mallopt(calls: list[tuple[int, int]], answer: int = 1
                  ) -> Callable[[], Callable[[int, int], int]]:
    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return answer
    return lambda: mallopt


def test_the_mmap_threshold_is_fixed_unless_the_environment_chose_one():
    calls: list[tuple[int, int]] = []
    assert allocator.return_large_blocks({}, _fake_mallopt(calls))
    assert calls == [(allocator.M_MMAP_THRESHOLD, 128 * 1024)]
    assert not allocator.return_large_blocks({allocator.ENV: "65536"}, _fake_mallopt(calls))
    assert len(calls) == 1  # glibc applies the environment's own value
    assert not allocator.return_large_blocks({}, lambda: None)  # no glibc
    assert not allocator.return_large_blocks({}, _fake_mallopt(calls, answer=0))  # refused


def test_this_machines_glibc_takes_the_threshold():
    # The recorder image and the devstack run on glibc (Debian): the real call succeeds.
    assert allocator.return_large_blocks({})
