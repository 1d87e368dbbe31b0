"""The real recorder on write-only scoped keys: record, lose the pod, continue, verify.

The operator (LUCID_STORAGE_SCOPED_CREDENTIALS=true) gives each recorder pod STS keys that
may only write the session's objects, and, before each pod, the resume point it read
with the long-lived key (a ConfigMap per pod). The first pod starts at chunk 0 without
asking the store; after `kubectl delete pod` the next one continues after the last stored
chunk, in a new key epoch. Under Compliance retention nothing is ever overwritten: every
object has exactly one version.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_common.contract import RESUME_FILE
from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _cli
from tests.faults.support import assert_no_secret_in_logs

pytestmark = pytest.mark.stack

BUCKET = "e2e-scoped-recording"


@pytest.fixture(scope="module")
def scoped_recorder_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "30",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        "LUCID_STORAGE_SCOPED_CREDENTIALS": "true",
        "LUCID_STORAGE_CREDENTIALS_DURATION_SECONDS": "900",
    }).start()
    yield running
    running.stop()


def _resume_point(sessions: Sessions, pod: str) -> dict:
    found = sessions.core.read_namespaced_config_map(f"{pod}-resume", sessions.namespace)
    configmap = sessions.api.sanitize_for_serialization(found)
    assert configmap["immutable"] is True
    (owner,) = configmap["metadata"]["ownerReferences"]
    assert owner["kind"] == "RecordingSession"
    return json.loads(gzip.decompress(base64.b64decode(configmap["binaryData"][RESUME_FILE])))


def test_write_only_recorders_record_and_continue_after_a_lost_pod(
        scoped_recorder_operator, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    keys = keygen(tmp_path / "keys")
    sessions.secret("auditor-scoped", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest("scoped", chunking={"maxSeconds": 1},
                                 retention={"mode": "Compliance", "duration": "1d"})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "auditor-scoped"
    manifest["spec"]["storage"]["bucket"] = BUCKET
    sessions.apply(manifest)
    sessions.wait_phase("scoped", "Recording", timeout=120)
    uid = sessions.get("scoped")["metadata"]["uid"]
    first = _resume_point(sessions, "scoped-recorder-0")
    assert first["session_uid"] == uid and first["chunk_seqs"] == [] and \
        first["manifest"] is None
    stack.desktop.type_text("recorded on write-only keys")
    stack.desktop.press("Return")
    wait_for(lambda: _chunks_stored(sessions, "scoped") >= 3, 90, "the first pod's chunks")

    stack.kubectl("delete", "pod", "scoped-recorder-0", "-n", sessions.namespace,
                  "--wait=false")
    wait_for(lambda: (s := sessions.status("scoped")).get("podName") == "scoped-recorder-1"
             and s.get("phase") == "Recording" and s, 150, "recording in scoped-recorder-1")
    handed = _resume_point(sessions, "scoped-recorder-1")
    assert len(handed["chunk_seqs"]) >= 3, handed["chunk_seqs"]
    assert handed["chunk_seqs"] == list(range(len(handed["chunk_seqs"])))
    event = next(e for e in sessions.events("scoped") if e["reason"] == "ResumePointHandedOver")
    assert event["message"] == (f"recorder pod scoped-recorder-1 continues after "
                                f"{len(handed['chunk_seqs'])} stored chunks"), event
    stored = _chunks_stored(sessions, "scoped")
    wait_for(lambda: _chunks_stored(sessions, "scoped") >= stored + 2, 90,
             "chunks from the second pod")

    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    status = sessions.wait_phase("scoped", "Completed", timeout=120)
    assert status["pipeline"]["state"] == "Finalized", status
    secret = sessions.core.read_namespaced_secret("scoped-storage-session", sessions.namespace)
    sts_keys = [base64.b64decode(v).decode() for v in secret.data.values()]
    # Neither pod was refused anything (their logs, kept by the local kubelet).
    pod_logs = {name: path.read_text(errors="replace") for name, path in stack.logs().items()
                if sessions.namespace in name and "scoped-recorder-" in name}
    assert {n for n in pod_logs if "scoped-recorder-0" in n} and \
        {n for n in pod_logs if "scoped-recorder-1" in n}, list(stack.logs())
    for name, logged in pod_logs.items():
        assert "access denied" not in logged.lower(), (name, logged[-2000:])
        assert not [k for k in sts_keys if k in logged], name
    assert_no_secret_in_logs(stack)

    source = ["--endpoint", stack.minio.endpoint, "--bucket", BUCKET, "--no-tls",
              "--session", f"{sessions.namespace}/scoped", "--private-key", str(keys.private)]
    report = _cli(stack, "lucid-seal", "verify", "--json", *source)
    assert report.returncode == 0, report.stdout + report.stderr
    result = json.loads(report.stdout)
    assert result["ok"] is True and result["complete"] is True, result
    assert [g["reason"] for g in result["gaps"]] == ["RecorderRestart"], result["gaps"]
    assert result["chunksAuthentic"] == result["chunksExpected"] >= stored + 2, result

    # Nothing was overwritten: one version of every chunk (the manifest has one per write).
    versions: dict[str, int] = {}
    root = f"recordings/{sessions.namespace}/scoped/{uid}/chunks/"
    for obj in stack.minio.client().list_objects(BUCKET, prefix=root, recursive=True,
                                                 include_version=True):
        versions[obj.object_name] = versions.get(obj.object_name, 0) + 1
    assert len(versions) == result["chunksExpected"]
    assert set(versions.values()) == {1}, versions
