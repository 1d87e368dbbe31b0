"""spec.retention end to end: the real recorder locks every object it writes in MinIO.

Run with LUCID_DEVSTACK_RECORDER_IMAGE=process.local/lucid-recorder while iterating (the
venv's recorder as a host process); by default the recorder image runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error

from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


def _session(sessions: Sessions, name: str, bucket: str, tmp_path: Path) -> dict:
    keys = keygen(tmp_path / "keys")
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, chunking={"maxSeconds": 1},
                                 retention={"mode": "Compliance", "duration": "1d"})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["storage"]["bucket"] = bucket
    sessions.apply(manifest)
    return manifest


def test_every_object_of_a_compliance_session_is_locked(recorder_operator, sessions: Sessions,
                                                       tmp_path: Path):
    stack = sessions.stack
    started = dt.datetime.now(dt.UTC)
    manifest = _session(sessions, "locked", "e2e-worm", tmp_path)
    sessions.wait_phase("locked", "Recording", timeout=90)
    wait_for(lambda: int((sessions.status("locked").get("pipeline") or {})
                         .get("chunksStored", 0)) >= 2, 60, "two chunks stored")
    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    sessions.wait_phase("locked", "Completed", timeout=90)

    root = stack.minio.client()
    uid = sessions.get("locked")["metadata"]["uid"]
    prefix = f"recordings/{sessions.namespace}/locked/{uid}/"

    def stored_objects() -> list:
        return [o for o in root.list_objects("e2e-worm", prefix=prefix, recursive=True,
                                             include_version=True) if not o.is_delete_marker]

    # The operator's seals (written after the status says Completed) are retained too.
    stored = wait_for(lambda: (found := stored_objects()) and any(
        "/seals/" in o.object_name for o in found) and found, 30, "the operator's seals")
    names = {o.object_name[len(prefix):] for o in stored}
    assert "manifest.json" in names and "chunks/00000001.lrec" in names, names
    for obj in stored:
        retention = root.get_object_retention("e2e-worm", obj.object_name, obj.version_id)
        assert retention is not None and retention.mode == COMPLIANCE, obj.object_name
        assert retention.retain_until_date >= started + dt.timedelta(days=1)
    chunk = next(o for o in stored if o.object_name.endswith("00000000.lrec"))
    with pytest.raises(S3Error):
        root.remove_object("e2e-worm", chunk.object_name, version_id=chunk.version_id)


def test_a_bucket_without_object_lock_keeps_the_session_pending_with_the_reason(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    """The operator checks the lock before it issues any keys (scoped credentials, the
    default); the recorder's own check, for a store without STS, is unit- and stack-tested
    (tests/stack/test_retention.py)."""
    root = sessions.stack.minio.client()
    if not root.bucket_exists("e2e-unlocked"):
        root.make_bucket("e2e-unlocked")
    _session(sessions, "unlocked", "e2e-unlocked", tmp_path)
    condition = wait_for(lambda: (c := sessions.condition("unlocked", "StorageCredentials"))
                         and c["status"] == "False" and c, 120, "StorageCredentials False")
    assert condition["reason"] == "ObjectLockMissing", condition
    assert "bucket e2e-unlocked has no S3 Object Lock" in condition["message"], condition
    assert "spec.retention cannot be honoured" in condition["message"], condition
    ready = sessions.condition("unlocked", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ObjectLockMissing", ready
    assert sessions.status("unlocked").get("phase") == "Pending"
    assert sessions.pods("unlocked") == []
    assert list(root.list_objects("e2e-unlocked", recursive=True)) == []
