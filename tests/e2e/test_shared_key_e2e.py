"""The real recorder with the session's own storage Secret (scoped credentials off, as for
a store without STS): the pod mounts that Secret, records, and fails clearly on a storage
key or bucket the store refuses. With scoped credentials (the default) the operator meets
those before any pod: tests/e2e/test_recording_e2e.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import (
    _chunks_stored,
    _start_recording,
    assert_recorder_failed_clearly,
    bad_input_session,
)
from tests.e2e.test_retention_e2e import _session
from tests.faults.support import stop_and_verify

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def shared_key_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "30",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        "LUCID_STORAGE_SCOPED_CREDENTIALS": "false",
    }).start()
    yield running
    running.stop()


def test_the_pod_gets_the_sessions_storage_secret_and_records(
        shared_key_operator, sessions: Sessions, tmp_path: Path):
    manifest, keys = _start_recording(sessions, "shared", "e2e-shared", 1, tmp_path / "keys")
    (pod,) = sessions.pods("shared")
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "storage-credentials"]
    assert volume["secret"]["secretName"] == "minio-creds"
    assert "resume" not in {v["name"] for v in pod["spec"]["volumes"]}
    assert sessions.condition("shared", "StorageCredentials") is None
    wait_for(lambda: _chunks_stored(sessions, "shared") >= 2, 60, "chunks stored")
    stop_and_verify(sessions, manifest, keys.private)


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong-storage-key", "InvalidAccessKeyId|SignatureDoesNotMatch|credentials"),
    ("missing-bucket", "does not exist"),
])
def test_bad_storage_inputs_fail_the_recorder_clearly_without_crash_looping(
        shared_key_operator, sessions: Sessions, tmp_path: Path, case: str, expected: str):
    bad_input_session(sessions, case, tmp_path)
    assert_recorder_failed_clearly(sessions, case, expected)


def test_retention_on_a_bucket_without_object_lock_fails_the_recorder_with_the_reason(
        shared_key_operator, sessions: Sessions, tmp_path: Path):
    root = sessions.stack.minio.client()
    if not root.bucket_exists("e2e-shared-unlocked"):
        root.make_bucket("e2e-shared-unlocked")
    _session(sessions, "unlocked", "e2e-shared-unlocked", tmp_path)
    status = sessions.wait_phase("unlocked", "Failed", timeout=120)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "bucket e2e-shared-unlocked has no S3 Object Lock" in ready["message"], ready
    assert "spec.retention cannot be honoured" in ready["message"], ready
    assert list(root.list_objects("e2e-shared-unlocked", recursive=True)) == []
