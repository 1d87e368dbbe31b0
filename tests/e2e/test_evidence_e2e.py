"""A real session, countersigned: operator + recorder on the local stack, driven through the
Kubernetes API, then `lucid-seal verify --operator-key --anchor --report` from the bucket.

The recorder runs as the real `lucid-recorder` (set LUCID_DEVSTACK_RECORDER_IMAGE to
process.local/lucid-recorder to run it as a host process instead of the image).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from lucid_common.api import Seal
from lucid_common.evidence import key_id, load_operator_public, seal_signed_by
from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack, venv_bin
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def sealing_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "30",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        # Checkpoints every 2 s, so a short session shows several.
        "LUCID_SEAL_CHECKPOINT_SECONDS": "2",
    }).start()
    yield running
    running.stop()


def _seal(sessions: Sessions, name: str) -> dict | None:
    return (sessions.status(name).get("evidence") or {}).get("seal")


def test_real_session_is_countersigned_and_verifies_against_the_operator_key(
        sealing_operator, sessions: Sessions, tmp_path: Path, api: client.ApiClient):
    stack = sessions.stack
    keys = keygen(tmp_path / "keys")
    sessions.secret("auditor-sealed", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest("sealed", chunking={"maxSeconds": 1})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "auditor-sealed"
    manifest["spec"]["storage"]["bucket"] = "e2e-sealed"
    sessions.apply(manifest)
    sessions.wait_phase("sealed", "Recording", timeout=90)

    # The recorder reports its run key and chain head; the operator countersigns them.
    pipeline = wait_for(lambda: (p := sessions.status("sealed").get("pipeline") or {})
                        .get("chainHead", {}).get("chunks", 0) >= 3 and p, 60,
                        "three chunks stored")
    run_key = pipeline["signingKey"]
    checkpoint = wait_for(lambda: (s := _seal(sessions, "sealed")) and s["chunks"] >= 1 and s,
                          60, "a checkpoint seal with chunks")
    assert checkpoint["signingKeys"] == [run_key] and not checkpoint["final"]

    # A lost pod: the replacement is a new recorder run with a key of its own, which the
    # operator countersigns as soon as it reports it.
    stack.kubectl("delete", "pod", "sealed-recorder-0", "-n", sessions.namespace,
                  "--wait=false")
    second = wait_for(lambda: (p := sessions.status("sealed").get("pipeline") or {})
                      .get("signingKey", {}).get("epoch", 0) >= 1
                      and p["chainHead"]["chunks"] >= pipeline["chainHead"]["chunks"] + 2
                      and p["signingKey"], 120, "chunks from the replacement pod's run")
    assert second["publicKey"] != run_key["publicKey"]
    wait_for(lambda: (s := _seal(sessions, "sealed")) and len(s["signingKeys"]) == 2, 30,
             "the second run key countersigned")

    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    sessions.wait_phase("sealed", "Completed", timeout=90)
    final = wait_for(lambda: (s := _seal(sessions, "sealed")) and s["final"] and s, 60,
                     "the final seal")
    status = sessions.status("sealed")
    assert final["state"] == "Completed" and final["recorderFinalized"]
    assert final["chunks"] == status["pipeline"]["chainHead"]["chunks"]
    assert final["chainHead"] == status["pipeline"]["chainHead"]["sha256"]
    assert not status["evidence"].get("message"), status["evidence"]
    assert any(e["reason"] == "Sealed" for e in sessions.events("sealed"))
    # For docs/storage.md: each seal is one status write (and one PUT) by the operator.
    print(f"\nsession of {final['chunks']} chunks: {final['counter']} seals, "
          f"started {status.get('startedAt')}, stopped {status.get('stoppedAt')}")

    # What an auditor gets: the operator's public key from its ConfigMap, the anchor
    # exported from the status.
    published = client.CoreV1Api(api).read_namespaced_config_map(
        "lucid-operator-public-key", "default").data
    (tmp_path / "operator.pem").write_text(published["publicKey"])
    operator = load_operator_public(published["publicKey"].encode(), "ConfigMap")
    assert published["keyId"] == key_id(operator) == final["operatorKeyId"]
    assert seal_signed_by(Seal.model_validate(final), operator)
    anchor = stack.kubectl("get", "rsess", "sealed", "-n", sessions.namespace, "-o",
                           "jsonpath={.status.evidence.seal}").stdout
    (tmp_path / "anchor.json").write_text(anchor)

    env = {**os.environ, **stack.env(), "LUCID_S3_ACCESS_KEY": stack.minio.access_key,
           "LUCID_S3_SECRET_KEY": stack.minio.secret_key}
    report = tmp_path / "out.json"
    done = subprocess.run(
        [str(venv_bin() / "lucid-seal"), "verify", "--endpoint", stack.minio.endpoint,
         "--bucket", "e2e-sealed", "--no-tls", "--session", f"{sessions.namespace}/sealed",
         "--private-key", str(keys.private), "--operator-key", str(tmp_path / "operator.pem"),
         "--anchor", str(tmp_path / "anchor.json"), "--report", str(report)],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    audit = json.loads(report.read_text())
    assert audit["verdict"] == "OK, countersigned by the operator"
    assert audit["namespace"] == sessions.namespace and audit["name"] == "sealed"
    assert audit["chunksAuthentic"] == final["chunks"] and audit["formats"] == [2]
    assert [k["publicKey"] for k in audit["signingKeys"]] == [run_key["publicKey"],
                                                             second["publicKey"]]
    assert all(k["countersigned"] for k in audit["signingKeys"])
    assert [g["reason"] for g in audit["gaps"]] == ["RecorderRestart"]
    assert audit["operator"]["seal"]["counter"] == final["counter"]
    assert audit["operator"]["sealsInBucket"] >= 2  # checkpoints and the final seal
    assert "verdict:    OK, countersigned by the operator" in done.stdout
    assert len(base64.b64decode(run_key["publicKey"])) == 32  # a raw ed25519 public key
