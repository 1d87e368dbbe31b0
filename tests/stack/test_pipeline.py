"""The recorder pipeline against the real MinIO and SeaweedFS: synthetic capture in,
verified chunks out."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from lucid_common.api import RecordingSessionSpec
from lucid_devstack.stack import Stack
from lucid_recorder import format as fmt
from lucid_recorder.pipeline.recording import Recording
from lucid_recorder.pipeline.stages import STAGE_NAMES
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing.keys import keygen, read_private_key, read_public_key
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.sealing.verify import decrypt_segments, verify
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import RetryPolicy, Spool, resume
from lucid_recorder.storage.from_spec import object_store
from tests.stack import s3servers

pytestmark = pytest.mark.stack

WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module", params=s3servers.KINDS)
def s3(request: pytest.FixtureRequest, stack: Stack,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3servers.S3Server]:
    """The stack's MinIO, or a SeaweedFS of the module's own."""
    if request.param == "minio":
        yield stack.minio
        return
    yield from s3servers.running(request, tmp_path_factory)


class Screen:
    """What the synthetic desktop shows; the recording must reproduce it exactly."""

    def __init__(self) -> None:
        self.pixels = bytearray(WIDTH * HEIGHT * 3)

    def paint(self, x: int, y: int, w: int, h: int, rgb: bytes) -> None:
        for row in range(h):
            start = ((y + row) * WIDTH + x) * 3
            self.pixels[start:start + w * 3] = rgb[row * w * 3:(row + 1) * w * 3]


async def synthetic(screen: Screen, updates: int, interval: float) -> AsyncIterator[ev.Event]:
    rng = random.Random(11)
    yield ev.Connected(time.monotonic_ns(), WIDTH, HEIGHT, 32, "ab" * 32,
                       ev.TlsMode.FINGERPRINT)
    yield ev.Rect(time.monotonic_ns(), 0, 0, WIDTH, HEIGHT, bytes(screen.pixels))
    for _ in range(updates):
        await asyncio.sleep(interval)
        w, h = rng.randint(1, 64), rng.randint(1, 48)
        x, y = rng.randint(0, WIDTH - w), rng.randint(0, HEIGHT - h)
        rgb = bytes(rng.randrange(256) for _ in range(w * h * 3))
        screen.paint(x, y, w, h, rgb)
        yield ev.Rect(time.monotonic_ns(), x, y, w, h, rgb)


def _spec(s3: s3servers.S3Server, bucket: str) -> RecordingSessionSpec:
    return RecordingSessionSpec.model_validate({
        "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "unused"}},
        "storage": {"endpoint": s3.endpoint, "bucket": bucket,
                    "credentialsSecretRef": {"name": "unused"}, "tls": {"enabled": False}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
        "chunking": {"maxSeconds": 1},
    })


def _record(s3: s3servers.S3Server, tmp: Path, updates: int, interval: float,
            during: threading.Thread | None = None) -> tuple[Screen, object, Path, list]:
    keys = keygen(tmp / "keys")
    identity = SessionIdentity(namespace="ns", name="pipe", uid=str(uuid.uuid4()))
    spec = _spec(s3, f"pipe-{uuid.uuid4().hex[:8]}")
    store = object_store(spec.storage, identity, s3.access_key, s3.secret_key)
    store.ensure_bucket(True)
    spool = Spool(tmp / "spool", 64 * 1024 * 1024, identity)
    recipient = read_public_key(keys.public)
    sealer = resume(spool, store, recipient)
    writes: list = []
    reporter = StatusReporter(writes.append, interval=0.2)
    recording = Recording(spec, spool, store, sealer, recipient, reporter,
                          retry=RetryPolicy(initial_delay=0.2, max_delay=2.0))
    screen = Screen()
    if during is not None:
        during.start()
    asyncio.run(recording.run(synthetic(screen, updates, interval), asyncio.Event()))
    if during is not None:
        during.join()
    return screen, store, keys.private, writes


def _replay(store, private_key_path: Path) -> bytes:
    private = read_private_key(private_key_path)
    manifest = store.get_manifest()
    report = verify(manifest, store.chunks(), private)
    assert report.ok, report.lines()
    assert report.complete and manifest.complete
    fb = None
    for segment in decrypt_segments(manifest, store.chunks(), private):
        decoded = fmt.read_segment(segment.plaintext)
        fb = fb or fmt.Framebuffer(decoded.header.width, decoded.header.height)
        for item in decoded.records:
            fb.apply(item.record)
    assert fb is not None
    return fb.to_image().tobytes()


def test_round_trip_frames_equal_what_was_captured(s3, tmp_path: Path):
    screen, store, private, writes = _record(s3, tmp_path, updates=60, interval=0.05)
    assert _replay(store, private) == bytes(screen.pixels)
    assert len(store.chunk_seqs()) >= 3  # one-second chunks over ~3 s
    final = writes[-1]["status"]["pipeline"]
    assert final["state"] == "Finalized"
    assert final["chunksStored"] == len(store.chunk_seqs())
    assert final["bytesStored"] > 0
    stages = {s["name"]: s for s in final["stages"]}
    assert list(stages) == list(STAGE_NAMES)
    # The store stage counts what reached the bucket, as bytesStored does.
    assert stages["store"]["bytesOut"] == final["bytesStored"]
    assert stages["store"]["bytesIn"] == stages["encrypt"]["bytesOut"] > 0
    assert stages["store"]["items"] == final["chunksStored"]
    # The metrics' stage label names the same stages as the status.
    labelled = {sample.labels["stage"] for family in REGISTRY.collect()
                if family.name == "lucid_recorder_stage_bytes" for sample in family.samples}
    assert labelled == set(STAGE_NAMES)


def test_storage_outage_loses_nothing(s3, tmp_path: Path):
    def outage() -> None:
        time.sleep(1.0)
        s3.stop()
        time.sleep(30.0)
        s3.start()

    screen, store, private, writes = _record(s3, tmp_path, updates=700, interval=0.05,
                                             during=threading.Thread(target=outage))
    assert _replay(store, private) == bytes(screen.pixels)
    messages = [w["status"]["pipeline"].get("message", "") for w in writes]
    assert any("storage unavailable" in m for m in messages), messages
    assert writes[-1]["status"]["pipeline"]["message"] == ""


def test_an_interrupted_recording_stays_open_for_the_next_pod(s3, tmp_path: Path):
    """SIGTERM without a stop (a deleted pod): every chunk is stored, the recording is left
    open, and a new pod on an empty spool continues it after a declared gap."""
    keys = keygen(tmp_path / "keys")
    identity = SessionIdentity(namespace="ns", name="moved", uid=str(uuid.uuid4()))
    spec = _spec(s3, f"moved-{uuid.uuid4().hex[:8]}")
    store = object_store(spec.storage, identity, s3.access_key, s3.secret_key)
    store.ensure_bucket(True)
    recipient = read_public_key(keys.public)

    def one_pod(spool_dir: Path, finalize: bool) -> list:
        spool = Spool(spool_dir, 64 * 1024 * 1024, identity)
        writes: list = []
        recording = Recording(spec, spool, store, resume(spool, store, recipient),
                              recipient, StatusReporter(writes.append, interval=0.2),
                              retry=RetryPolicy(initial_delay=0.2, max_delay=2.0))
        asyncio.run(recording.run(synthetic(Screen(), 30, 0.05), asyncio.Event(),
                                  finalize=lambda: finalize))
        return writes

    first = one_pod(tmp_path / "spool-0", finalize=False)
    assert first[-1]["status"]["pipeline"]["state"] == "Interrupted"
    manifest = store.get_manifest()
    assert not manifest.complete and manifest.totals.chunks == len(store.chunk_seqs()) > 0
    second = one_pod(tmp_path / "spool-1", finalize=True)  # a new pod: a fresh emptyDir
    assert second[-1]["status"]["pipeline"]["state"] == "Finalized"
    report = verify(store.get_manifest(), store.chunks(), read_private_key(keys.private))
    assert report.ok and report.complete, report.lines()
    assert [gap.reason.value for gap in report.gaps] == ["RecorderRestart"]
