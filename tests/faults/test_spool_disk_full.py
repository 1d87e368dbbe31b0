"""The spool's filesystem runs out of space (ENOSPC) below the spool's own byte bound.

The recorder's bound (`spool_max_bytes`, SpoolFull back-pressure) is tested
elsewhere; this is the disk filling first, as when the node's disk is shared.
A size-limited tmpfs stands in for that disk. The spool must leave no
half-written file, hand back the sealed chunk (its sequence number and nonce
are spent) and take the same bytes once uploads have made room: nothing that
was spooled or acknowledged is lost, and no hole or gap appears.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_devstack.stack import Stack
from lucid_recorder.sealing import Codec, SessionIdentity, compress
from lucid_recorder.sealing import verify as verify_session
from lucid_recorder.storage import (
    ObjectStore,
    RetryPolicy,
    SessionLayout,
    Spool,
    SpoolDiskFull,
    make_client,
    publish_manifest,
    resume,
    upload_pending,
)
from tests.faults.support import assert_no_secret_in_logs

pytestmark = pytest.mark.stack

FAST = RetryPolicy(initial_delay=0.2, max_delay=1.0)
DISK = "256k"
# Random bytes do not compress: each chunk takes its full size on the small disk.
CHUNK_BYTES = 60_000
# Far above the disk, so the filesystem and not the spool's accounting says no.
SPOOL_BOUND = 64 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    # The local stack already needs root (its kubelet mounts tmpfs for pods).
    mountpoint = tmp_path / "spool"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "lucid-faults", mountpoint],
                   check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", mountpoint], check=True)


def test_disk_full_then_restart_keeps_every_spooled_and_stored_chunk(stack: Stack,
                                                                     small_disk: Path):
    session = SessionIdentity(namespace="faults", name="disk-full", uid=str(uuid.uuid4()))
    client = make_client(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key,
                         secure=False)
    store = ObjectStore(client, "faults-spool", SessionLayout("recordings", session))
    store.ensure_bucket(create=True)
    recipient = X25519PrivateKey.generate()

    spool = Spool(small_disk, SPOOL_BOUND, session)
    sealer = resume(spool, store, recipient.public_key())
    sealed = 0

    def seal(at: int) -> None:
        nonlocal sealed
        spool.seal_into(sealer, compress(os.urandom(CHUNK_BYTES), Codec.ZSTD, 1), at, at + 9)
        sealed += 1

    seal(0)
    seal(10)
    assert upload_pending(spool, store, FAST).uploaded == 2  # acknowledged by MinIO
    with pytest.raises(SpoolDiskFull) as full:
        for at in range(20, 1000, 10):
            seal(at)
    assert isinstance(full.value.__cause__, OSError)
    assert full.value.__cause__.errno == errno.ENOSPC
    assert sealed > 2, "the disk filled before anything was left pending"
    assert [p.seq for p in spool.pending()] == list(range(2, sealed))
    assert list((small_disk / "tmp").iterdir()) == [], "the half-written chunk still takes space"
    assert full.value.chunk.seq == sealed

    # Uploads make room; the very same sealed chunk goes in, then recording goes on.
    assert upload_pending(spool, store, FAST).remaining == 0
    spool.put(full.value.chunk)
    sealed += 1
    seal(5000)
    assert upload_pending(spool, store, FAST).remaining == 0
    publish_manifest(spool, store, recipient.public_key(), FAST,
                     complete=True, sealer=sealer)
    report = verify_session(store.get_manifest(), store.chunks(), recipient)
    assert report.ok and report.complete, report.lines()
    assert report.chunks_authentic == sealed
    assert report.gaps == []
    assert_no_secret_in_logs(stack, with_operator=False)  # no operator in this test
