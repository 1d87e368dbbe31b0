"""The recorder's status message names every current problem, and each clears on its own.

A full spool disk during a storage outage is two problems. Before, one
`problem` string was overwritten by whichever stage spoke last, so the
session's Degraded message flipped between "spool disk full" and "storage
unavailable" with every upload retry, and a drained upload queue cleared a
still-current "disconnected".
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.api import RecordingSessionSpec
from lucid_recorder.pipeline.recording import MESSAGE_MAX, CompressedSegment, Recording
from lucid_recorder.sealing import Codec, SessionIdentity, compress
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import ObjectStore, SessionLayout, Spool, make_client, resume

SESSION = SessionIdentity(namespace="team", name="rec", uid="9b7e6c1e-1111-4a5c-8e9f-0011223344")
STORAGE_DOWN = "storage unavailable (TransientStorageError); retry 3 in 2.0s"


class Reports(StatusReporter):
    """Keeps every pipeline view the recording reported, not only the newest."""

    def __init__(self) -> None:
        super().__init__(lambda body: None, interval=1.0)
        self.messages: list[str] = []

    def update(self, pipeline: dict[str, Any], significant: bool = False) -> None:
        self.messages.append(pipeline["message"])
        super().update(pipeline, significant)


def _recording(tmp_path: Path) -> tuple[Recording, Spool, Reports]:
    spec = RecordingSessionSpec.model_validate({
        "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "unused"}},
        "storage": {"endpoint": "127.0.0.1:9", "bucket": "unit-bucket",
                    "credentialsSecretRef": {"name": "unused"}, "tls": {"enabled": False}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
    })
    # Never contacted: the store only names the bucket and prefix in the status here.
    store = ObjectStore(make_client("127.0.0.1:9", "unused", "unused", secure=False),
                        "unit-bucket",
                        SessionLayout("recordings", SESSION))
    recipient = X25519PrivateKey.generate().public_key()
    spool = Spool(tmp_path / "spool", 1 << 20, SESSION)
    reports = Reports()
    return Recording(spec, spool, store, resume(spool, None, recipient), recipient,
                     reports), spool, reports


def test_full_spool_disk_and_storage_outage_are_both_reported_then_clear_apart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    recording, spool, reports = _recording(tmp_path)
    recording.set_problem("storage", STORAGE_DOWN)
    real_fsync = os.fsync
    failures = {"left": 2}

    def full_twice(fd: int) -> None:
        # The chunk's first write and its first retry find the disk full.
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_twice)
    item = CompressedSegment(0, 10, compress(b"frame" * 100, Codec.ZSTD, 1))
    assert [ref.seq for ref in asyncio.run(recording._seal(item))] == [0]

    disk_full = ("spool disk full: no room for chunk 0 (No space left on device); waiting "
                 f"for uploads to free space; {STORAGE_DOWN}")
    assert reports.messages[:2] == [disk_full, disk_full], reports.messages
    # Spooled on the second retry: that problem is over, the outage is not.
    assert recording.problem == STORAGE_DOWN
    assert reports.messages[-1] == STORAGE_DOWN
    assert [p.seq for p in spool.pending()] == [0]
    assert recording.sealer.next_seq == 1  # sealed once, written when there was room
    recording.set_problem("storage", "")
    assert recording.pipeline_status()["message"] == ""


def test_message_stays_within_the_crd_limit(tmp_path: Path):
    recording, _, _ = _recording(tmp_path)
    recording.set_problem("capture", "disconnected: " + "x" * 2000)
    recording.set_problem("storage", STORAGE_DOWN)
    message = recording.pipeline_status()["message"]
    assert len(message) == MESSAGE_MAX and message.startswith("disconnected: x")
    with pytest.raises(ValueError, match="unknown problem source"):
        recording.set_problem("network", "down")
