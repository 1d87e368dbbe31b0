"""Storage faults that used to lose recordings silently (issue 16 items 5, 9 and 11).

- A session deleted while MinIO is down: the recorder gets its grace period, stops
  retrying just before it ends, and says which chunks it could not upload (a Warning
  Event on the session, its last words in its log, exit 6 rather than SIGKILL's 137).
- The storage key rotated under a running session: the credentials are a mounted
  Secret volume the kubelet re-syncs, the recorder re-reads them after the store
  rejected the old key, and the session records on with nothing lost.
- The key disabled with no new one: the session fails once the recorder's wait for
  a rotated Secret is over; one Failed Event, and the pod gets its grace period.

The real recorder with the session's own storage Secret (scoped credentials off), the real
MinIO (its admin API makes and disables users), kubectl.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio.credentials import StaticProvider
from minio.minioadmin import MinioAdmin

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.proc import free_port
from lucid_devstack.stack import Stack
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored
from tests.faults.support import assert_no_secret_in_logs, stop_and_verify

pytestmark = pytest.mark.stack

GRACE = 15
AUTH_WAIT = 40


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def storage_operator(stack: Stack, crd: None, metrics_port: int) -> Iterator[OperatorProcess]:
    # One recorder at a time in this module: one fixed metrics port on the host network.
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": str(metrics_port),
        "LUCID_TERMINATION_GRACE_SECONDS": str(GRACE),
        "LUCID_DELETE_TIMEOUT_SECONDS": "60",
        "LUCID_STORAGE_AUTH_WAIT_SECONDS": str(AUTH_WAIT),
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        # The recorder holds the session's storage Secret itself here (a store without
        # STS), so rotating or disabling that key reaches it; with scoped credentials
        # (the default) the operator's STS keys do, tested in tests/e2e/test_scoped_*.
        "LUCID_STORAGE_SCOPED_CREDENTIALS": "false",
    }).start()
    yield running
    running.stop()


def _admin(stack: Stack) -> MinioAdmin:
    return MinioAdmin(endpoint=stack.minio.endpoint, secure=False,
                      credentials=StaticProvider(stack.minio.access_key, stack.minio.secret_key))


def _user(stack: Stack, name: str) -> str:
    """A MinIO user allowed to read and write, as an operator would give a recorder."""
    secret = secrets.token_urlsafe(18)
    admin = _admin(stack)
    admin.user_add(name, secret)
    admin.attach_policy(["readwrite"], user=name)
    return secret


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines
            if line.startswith("lucid_recorder_")}


def _show(sessions: Sessions, *args: str) -> str:
    out = sessions.stack.kubectl(*args, "-n", sessions.namespace).stdout
    print(f"\n$ kubectl {' '.join(args)}\n{out}")
    return out


def _start(sessions: Sessions, name: str, bucket: str, keys_dir: Path,
           creds: str = "minio-creds") -> tuple[dict, Path]:
    keys = keygen(keys_dir)
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, chunking={"maxSeconds": 1})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["storage"]["bucket"] = bucket
    manifest["spec"]["storage"]["credentialsSecretRef"]["name"] = creds
    sessions.apply(manifest)
    sessions.wait_phase(name, "Recording", timeout=90)
    wait_for(lambda: _chunks_stored(sessions, name) >= 2, 60, "the first chunks")
    return manifest, keys.private


def test_deleting_a_session_during_an_outage_names_the_chunks_lost(
        storage_operator, sessions: Sessions, metrics_port: int, tmp_path: Path):
    stack, name, bucket = sessions.stack, "deleted-in-outage", "faults-deleted"
    _start(sessions, name, bucket, tmp_path / "keys")
    pod = sessions.pods(name)[0]["metadata"]["name"]
    stored_before = _chunks_stored(sessions, name)

    stack.minio.stop()
    try:
        wait_for(lambda: (c := sessions.condition(name, "Degraded")) and c["status"] == "True",
                 30, "Degraded=True during the outage")
        time.sleep(3)  # a few more one-second chunks wait in the spool
        during = _metrics(metrics_port)
        assert during["lucid_recorder_upload_lag_seconds"] > 2, during
        assert during['lucid_recorder_errors_total{stage="store"}'] > 0
        assert during['lucid_recorder_retries_total{operation="upload"}'] > 0
        print("\nduring the outage: " + ", ".join(
            f"{k} {v:g}" for k, v in during.items()
            if "lag" in k or 'stage="store"' in k or 'operation="upload"' in k
            or "rdp_connected" in k))
        _show(sessions, "get", "rsess", name)
        began = time.monotonic()
        stack.kubectl("delete", "rsess", name, "-n", sessions.namespace, "--wait=true",
                      timeout=120)
        took = time.monotonic() - began
    finally:
        stack.minio.start()  # later tests need MinIO back

    # Bounded by the grace period (plus the operator's and kubelet's polling), not the
    # delete timeout: the recorder stopped retrying on its own and exited.
    assert took < GRACE + 15, f"delete took {took:.1f}s"
    events = wait_for(lambda: [e for e in sessions.events(name)
                               if e["reason"] == "ChunksNotUploaded"], 30,
                      "the ChunksNotUploaded Event")
    assert [e["type"] for e in events] == ["Warning"], events
    message = events[0]["message"]
    found = re.search(r"(\d+) sealed chunks? not uploaded \(seq ([\d, -]+), ", message)
    assert found, message
    assert f"within the {GRACE}s grace period" in message, message
    log = stack.kubelet.pod_log(sessions.namespace, pod, "recorder").read_text()
    last = log.strip().splitlines()[-1]
    assert last.startswith("lucid-recorder: recording incomplete: "), last
    assert found.group(0) in last
    assert f"container recorder of pod {sessions.namespace}/{pod} exited with code 6" \
        in stack.kubelet.log.read_text()
    print(f"\ndelete returned after {took:.1f}s (grace {GRACE}s)")
    _show(sessions, "get", "events", "--field-selector", f"involvedObject.name={name}")

    # What the Event names is exactly what the bucket lacks; what it holds is intact.
    lost = set()
    for part in found.group(2).split(", "):
        low, _, high = part.partition("-")
        lost.update(range(int(low), int(high or low) + 1))
    assert len(lost) == int(found.group(1))
    prefix = f"recordings/{sessions.namespace}/{name}/"
    names = [o.object_name for o in stack.minio.client().list_objects(
        bucket, prefix=prefix, recursive=True)]
    stored = {int(m.group(1)) for n in names if (m := re.search(r"chunks/(\d+)", n or ""))}
    assert stored and not stored & lost, (sorted(stored), sorted(lost))
    assert len(stored) >= stored_before
    assert min(lost) == max(stored) + 1, (sorted(stored), sorted(lost))


def test_rotating_the_storage_key_keeps_the_session_recording(
        storage_operator, sessions: Sessions, metrics_port: int, tmp_path: Path):
    """The old key is disabled before the Secret holds the new one (the hard order)."""
    stack, name = sessions.stack, "rotated"
    first = f"rotor-a-{secrets.token_hex(3)}"
    sessions.secret("rotating-creds", {"accessKey": first, "secretKey": _user(stack, first)})
    manifest, private = _start(sessions, name, "faults-rotated", tmp_path / "keys",
                               creds="rotating-creds")
    pod = sessions.pods(name)[0]["metadata"]
    second = f"rotor-b-{secrets.token_hex(3)}"
    secret = _user(stack, second)

    _admin(stack).user_disable(first)
    rejected = wait_for(lambda: (c := sessions.condition(name, "Degraded"))
                        and "InvalidAccessKeyId" in c["message"] and c, 30,
                        "Degraded: the store rejects the old key")
    assert "re-reading Secret rotating-creds for rotated keys" in rejected["message"], rejected
    assert sessions.status(name)["phase"] == "Recording"
    stored = _chunks_stored(sessions, name)
    sessions.core.patch_namespaced_secret("rotating-creds", sessions.namespace, {
        "stringData": {"accessKey": second, "secretKey": secret}})
    rotated = time.monotonic()
    wait_for(lambda: _chunks_stored(sessions, name) >= stored + 5, 90,
             "chunks stored with the rotated key")
    resumed = time.monotonic() - rotated
    healed = wait_for(lambda: (c := sessions.condition(name, "Degraded"))
                      and c["status"] == "False" and c, 30, "Degraded=False")
    status = sessions.status(name)
    assert status["phase"] == "Recording" and status.get("retries", 0) == 0, status
    assert [p["metadata"]["uid"] for p in sessions.pods(name)] == [pod["uid"]]
    log = stack.kubelet.pod_log(sessions.namespace, pod["name"], "recorder").read_text()
    assert "Secret rotating-creds holds new storage credentials; using them" in log
    assert not [e for e in sessions.events(name) if e["reason"] == "Failed"]
    rereads = _metrics(metrics_port)[
        'lucid_recorder_retries_total{operation="storage_credentials"}']
    assert rereads >= 1
    print(f"\nuploads resumed {resumed:.1f}s after the Secret was updated; "
          f"storage_credentials re-reads {rereads:g}; Degraded cleared: {healed['message']}")
    _show(sessions, "get", "rsess", name)
    _show(sessions, "get", "events", "--field-selector",
          f"involvedObject.name={name},reason=Recovered")

    _status, result, _source = stop_and_verify(sessions, manifest, private)
    assert result["gaps"] == [], result["gaps"]  # nothing lost across the rotation
    print(f"verify: ok {result['ok']}, complete {result['complete']}, "
          f"chunks {result['chunksAuthentic']}/{result['chunksExpected']}, gaps {result['gaps']}")
    assert secret not in json.dumps(sessions.get(name))
    assert_no_secret_in_logs(stack)
    for log_path in stack.logs().values():
        assert secret not in log_path.read_text(errors="replace"), log_path


def test_a_disabled_key_without_a_new_one_fails_once_with_its_grace(
        storage_operator, sessions: Sessions, tmp_path: Path):
    stack, name = sessions.stack, "key-disabled"
    user = f"rotor-c-{secrets.token_hex(3)}"
    sessions.secret("doomed-creds", {"accessKey": user, "secretKey": _user(stack, user)})
    _start(sessions, name, "faults-disabled", tmp_path / "keys", creds="doomed-creds")
    pod = sessions.pods(name)[0]["metadata"]["name"]
    _admin(stack).user_disable(user)
    disabled = time.monotonic()

    # Degraded while the recorder waits for a rotated Secret, naming it and the deadline.
    waiting = wait_for(lambda: (c := sessions.condition(name, "Degraded"))
                       and "re-reading Secret doomed-creds" in c["message"] and c, 30,
                       "Degraded while waiting for rotated keys")
    assert "InvalidAccessKeyId" in waiting["message"], waiting
    assert sessions.status(name)["phase"] == "Recording"
    status = sessions.wait_phase(name, "Failed", timeout=AUTH_WAIT + 60)
    failed_after = time.monotonic() - disabled
    assert failed_after >= AUTH_WAIT - 5, failed_after
    ready = sessions.condition(name, "Ready")["message"]
    assert "rejected the credentials" in ready, ready
    assert "Secret doomed-creds held no key the store accepts in " in ready, ready
    assert status["retries"] == 0
    wait_for(lambda: sessions.pods(name) == [], GRACE + 30, "the pod to be removed")
    # The operator's delete gave the pod its grace period, never 0.
    assert f"container recorder of pod {sessions.namespace}/{pod} stopping (pod deleted, " \
           f"grace {GRACE}s)" in stack.kubelet.log.read_text()
    time.sleep(5)  # late watch events and handler re-runs must not post it again
    failed = [e for e in sessions.events(name) if e["reason"] == "Failed"]
    assert len(failed) == 1 and failed[0].get("count", 1) == 1, failed
    print(f"\nFailed {failed_after:.1f}s after the key was disabled "
          f"(LUCID_STORAGE_AUTH_WAIT_SECONDS {AUTH_WAIT})")
    _show(sessions, "get", "rsess", name)
    _show(sessions, "get", "events", "--field-selector", f"involvedObject.name={name}")
