"""The product end to end: kubectl apply → real recorder pod → xrdp → MinIO → verify → play.

The operator runs the real `lucid-recorder` here (not the stand-in): the local kubelet runs
the recorder pod from the recorder image (localhost/lucid-recorder, built from
Dockerfile.recorder) as an OCI container, non-root, read-only, all capabilities dropped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from lucid_devstack import images, kubelet_podman
from lucid_devstack.stack import Stack, venv_bin
from lucid_recorder.sealing.keys import KeyPairFiles, keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


def _cli(stack: Stack, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env(),
           "LUCID_S3_ACCESS_KEY": stack.minio.access_key,
           "LUCID_S3_SECRET_KEY": stack.minio.secret_key}
    return subprocess.run([str(venv_bin() / argv[0]), *argv[1:]], capture_output=True,
                          text=True, timeout=120, env=env)


def _start_recording(sessions: Sessions, name: str, bucket: str, chunk_seconds: int,
                     keys_dir: Path) -> tuple[dict, KeyPairFiles]:
    """A session with a real auditor key pair, recording with short chunks, and its keys."""
    keys = keygen(keys_dir)
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, chunking={"maxSeconds": chunk_seconds})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["storage"]["bucket"] = bucket
    sessions.apply(manifest)
    sessions.wait_phase(name, "Recording", timeout=90)
    return manifest, keys


def _chunks_stored(sessions: Sessions, name: str) -> int:
    return int((sessions.status(name).get("pipeline") or {}).get("chunksStored", 0))


def test_record_stop_verify_and_play(recorder_operator, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    manifest, keys = _start_recording(sessions, "real", "e2e-recordings", 2, tmp_path / "keys")
    (pod,) = sessions.pods("real")
    recorder = pod["status"]["containerStatuses"][0]
    assert recorder["image"] == images.image_name("recorder")
    assert recorder["containerID"].startswith(kubelet_podman.CONTAINER_ID_PREFIX)
    # The image's recorder runs its native core (built in the image, LUCID_NATIVE=1).
    logged = stack.kubectl("logs", pod["metadata"]["name"], "-n", sessions.namespace).stdout
    assert "(hot path: native)" in logged, logged

    stack.desktop.type_text("lucid records this line exactly")
    stack.desktop.press("Return")
    wait_for(lambda: _chunks_stored(sessions, "real") >= 2, 60,
             "chunks to grow in status.pipeline.chunksStored")
    clock = stack.desktop.window_geometry("xclock")
    screen = stack.desktop.screenshot_rgb()

    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    status = sessions.wait_phase("real", "Completed", timeout=90)
    pipeline = status["pipeline"]
    assert pipeline["state"] == "Finalized"
    assert pipeline["chunksStored"] >= 2 and pipeline["bytesStored"] > 0
    assert pipeline["location"]["bucket"] == "e2e-recordings"

    source = ["--endpoint", stack.minio.endpoint, "--bucket", "e2e-recordings", "--no-tls",
              "--session", f"{sessions.namespace}/real", "--private-key", str(keys.private)]
    verified = _cli(stack, "lucid-seal", "verify", *source)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    decrypted = _cli(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(tmp_path / "seg"))
    assert decrypted.returncode == 0, decrypted.stderr
    info = _cli(stack, "lucid-play", "info", str(tmp_path / "seg"))
    assert info.returncode == 0, info.stderr
    last = tmp_path / "last.png"
    frame = _cli(stack, "lucid-play", "frame", str(tmp_path / "seg"), "--at", "end", "-o",
                 str(last))
    assert frame.returncode == 0, frame.stderr

    # The last frame shows what the desktop showed, pixel for pixel, except the
    # clock face: its hands move between the screenshot and the stop.
    played = Image.open(last).convert("RGB")
    assert played.size == screen.size
    x, y, w, h = clock
    for image in (played, screen):
        image.paste((0, 0, 0), (x, y, x + w, y + h))
    assert ImageChops.difference(played, screen).getbbox() is None


def test_recorder_sigkill_restarts_on_its_spool_and_verify_names_the_gap(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    manifest, keys = _start_recording(sessions, "killed", "e2e-killed", 1, tmp_path / "keys")
    wait_for(lambda: _chunks_stored(sessions, "killed") >= 2, 60, "the first chunks")

    before_kill = _chunks_stored(sessions, "killed")
    pod = sessions.pods("killed")[0]
    container = pod["status"]["containerStatuses"][0]
    # The recorder is PID 1 of its container; SIGKILL from the host, as the OOM killer would.
    name = container["containerID"].removeprefix(kubelet_podman.CONTAINER_ID_PREFIX)
    os.kill(kubelet_podman.main_pid(name), signal.SIGKILL)
    wait_for(lambda: sessions.pods("killed")[0]["status"]["containerStatuses"][0]
             .get("restartCount", 0) >= 1, 60, "the kubelet to restart the recorder")
    sessions.wait_phase("killed", "Recording", timeout=90)
    stored = _chunks_stored(sessions, "killed")
    assert stored >= before_kill  # the restarted recorder counts on from the spool
    wait_for(lambda: _chunks_stored(sessions, "killed") >= stored + 2, 60,
             "chunks after the restart")
    assert sessions.status("killed")["retries"] == 1

    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    sessions.wait_phase("killed", "Completed", timeout=90)
    report = _cli(stack, "lucid-seal", "verify", "--json", "--endpoint", stack.minio.endpoint,
                  "--bucket", "e2e-killed", "--no-tls", "--session",
                  f"{sessions.namespace}/killed", "--private-key", str(keys.private))
    assert report.returncode == 0, report.stdout + report.stderr
    result = json.loads(report.stdout)
    assert result["ok"] is True and result["complete"] is True
    gaps = result["gaps"]
    assert len(gaps) == 1, gaps
    assert gaps[0]["reason"] == "RecorderRestart", gaps


def bad_input_session(sessions: Sessions, case: str, tmp_path: Path) -> None:
    """Apply a session whose recorder (or, with scoped credentials, whose operator) must
    refuse one bad input: a wrong storage key, a missing bucket or a malformed public key."""
    stack = sessions.stack
    keys = keygen(tmp_path / "keys")
    public = "this is not a PEM public key" if case == "malformed-key" else keys.public.read_text()
    sessions.secret("auditor-bad", {"publicKey": public})
    manifest = sessions.manifest(case)
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "auditor-bad"
    if case == "wrong-storage-key":
        sessions.secret("wrong-creds", {"accessKey": stack.minio.access_key,
                                        "secretKey": "definitely-not-the-secret"})
        manifest["spec"]["storage"]["credentialsSecretRef"]["name"] = "wrong-creds"
    if case == "missing-bucket":
        manifest["spec"]["storage"].update(bucket="never-created", createBucket=False)
    sessions.apply(manifest)


def assert_recorder_failed_clearly(sessions: Sessions, case: str, expected: str) -> None:
    status = sessions.wait_phase(case, "Failed", timeout=90)
    running = sessions.condition(case, "RecorderRunning")
    assert running["reason"] == "RecorderFailed"
    assert running["message"].startswith("recorder cannot continue:")
    assert re.search(expected, running["message"], re.IGNORECASE), running["message"]
    assert "definitely-not-the-secret" not in json.dumps(sessions.get(case))
    assert status["retries"] == 0  # failed at once: no crash loop through the retries
    wait_for(lambda: sessions.pods(case) == [], 30, "the recorder pod to be removed")


def test_a_malformed_recipient_key_fails_the_recorder_clearly_without_crash_looping(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    bad_input_session(sessions, "malformed-key", tmp_path)
    assert_recorder_failed_clearly(sessions, "malformed-key", "public key")


@pytest.mark.parametrize(("case", "reason", "expected"), [
    ("wrong-storage-key", "StorageRefused", "refused (InvalidAccessKeyId|SignatureDoesNotMatch)"),
    ("missing-bucket", "BucketMissing", "bucket never-created does not exist"),
])
def test_bad_storage_inputs_keep_the_session_pending_before_any_pod(
        recorder_operator, sessions: Sessions, tmp_path: Path, case: str, reason: str,
        expected: str):
    """With scoped credentials (the default) the operator meets the store first: the
    session waits with the store's answer, and no recorder pod is made to fail."""
    bad_input_session(sessions, case, tmp_path)
    condition = wait_for(lambda: (c := sessions.condition(case, "StorageCredentials"))
                         and c["status"] == "False" and c, 90, "StorageCredentials False")
    assert condition["reason"] == reason, condition
    assert re.search(expected, condition["message"]), condition["message"]
    ready = sessions.condition(case, "Ready")
    assert ready["status"] == "False" and ready["reason"] == reason, ready
    assert sessions.status(case).get("phase") == "Pending"
    assert "definitely-not-the-secret" not in json.dumps(sessions.get(case))
    assert sessions.pods(case) == []


def test_lost_pod_and_spec_edit_continue_the_recording_after_declared_gaps(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    """`kubectl delete pod` while recording, then a chunking edit: neither completes the
    session; each new pod continues the one recording, and verify names both gaps."""
    stack = sessions.stack
    manifest, keys = _start_recording(sessions, "moved", "e2e-moved", 1, tmp_path / "keys")
    wait_for(lambda: _chunks_stored(sessions, "moved") >= 2, 60, "the first chunks")

    def recording_in(pod: str) -> dict:
        return wait_for(lambda: (s := sessions.status("moved")).get("podName") == pod
                        and s.get("phase") == "Recording" and s, 120,
                        f"recording in pod {pod}")

    stack.kubectl("delete", "pod", "moved-recorder-0", "-n", sessions.namespace, "--wait=false")
    status = recording_in("moved-recorder-1")
    assert "stopReason" not in status and status["retries"] == 1
    stored = _chunks_stored(sessions, "moved")
    wait_for(lambda: _chunks_stored(sessions, "moved") >= stored + 2, 60,
             "chunks from the replacement pod")

    stack.kubectl("patch", "rsess", "moved", "-n", sessions.namespace, "--type=merge",
                  "-p", json.dumps({"spec": {"chunking": {"maxSeconds": 2}}}))
    status = recording_in("moved-recorder-2")
    assert status["retries"] == 1  # a reconfiguration is not a failure
    assert status["observedGeneration"] == sessions.get("moved")["metadata"]["generation"]
    stored = _chunks_stored(sessions, "moved")
    wait_for(lambda: _chunks_stored(sessions, "moved") >= stored + 2, 60,
             "chunks from the reconfigured pod")

    stopped = {**manifest["spec"], "state": "Stopped", "chunking": {"maxSeconds": 2}}
    sessions.apply({**manifest, "spec": stopped})
    status = sessions.wait_phase("moved", "Completed", timeout=90)
    assert status["stopReason"] == "StoppedBySpec"
    # The store stage reports what the bucket holds, under the same names as the metrics.
    stages = {s["name"]: s for s in status["pipeline"]["stages"]}
    assert list(stages) == ["capture", "compress", "encrypt", "store"]
    assert stages["store"]["bytesOut"] > 0
    print(stack.kubectl("get", "rsess", "moved", "-n", sessions.namespace).stdout)
    print(stack.kubectl("get", "events", "-n", sessions.namespace, "--field-selector",
                        "involvedObject.name=moved", "--sort-by=.lastTimestamp").stdout)

    source = ["--endpoint", stack.minio.endpoint, "--bucket", "e2e-moved", "--no-tls",
              "--session", f"{sessions.namespace}/moved", "--private-key", str(keys.private)]
    report = _cli(stack, "lucid-seal", "verify", "--json", *source)
    assert report.returncode == 0, report.stdout + report.stderr
    print(report.stdout)
    result = json.loads(report.stdout)
    assert result["ok"] is True and result["complete"] is True
    assert [g["reason"] for g in result["gaps"]] == ["RecorderRestart", "RecorderRestart"], \
        result["gaps"]
    decrypted = _cli(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(tmp_path / "seg"))
    assert decrypted.returncode == 0, decrypted.stderr
    info = _cli(stack, "lucid-play", "info", str(tmp_path / "seg"))
    assert info.returncode == 0, info.stderr
    print(info.stdout)
    segments = next(line for line in info.stdout.splitlines() if line.startswith("segments"))
    assert segments.endswith(" decrypted") and "stored" not in info.stdout
