"""Scoped storage credentials end to end: the real operator against the real MinIO.

The operator (LUCID_STORAGE_SCOPED_CREDENTIALS=true) makes the bucket, calls STS
AssumeRole with the session policy, keeps the keys in a Secret owned by the session,
mounts that one in the recorder pod instead of the shared Secret, and renews the keys
before they expire. The stand-in recorder plays the pod (it only needs the keys present);
tests/stack/test_scoped_credentials.py checks what the keys may do on MinIO and SeaweedFS.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import Iterator

import pytest
from minio import Minio
from minio.error import S3Error

from lucid_devstack.operator_proc import STANDIN_SETTINGS, OperatorProcess
from lucid_devstack.seaweedfs import SeaweedServer
from lucid_devstack.stack import Stack
from lucid_operator.sts import EXPIRES_ANNOTATION
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def scoped_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(stack, settings={
        **STANDIN_SETTINGS,
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "10",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        "LUCID_RETRY_BACKOFF_MAX_SECONDS": "4",
        "LUCID_STORAGE_SCOPED_CREDENTIALS": "true",
        "LUCID_STORAGE_CREDENTIALS_DURATION_SECONDS": "900",
    }).start()
    yield running
    running.stop()


def _secret(sessions: Sessions, name: str) -> dict | None:
    try:
        found = sessions.core.read_namespaced_secret(name, sessions.namespace)
    except Exception:  # noqa: BLE001 - absent until the operator writes it
        return None
    return sessions.api.sanitize_for_serialization(found)


def _keys(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_recorder_gets_its_own_write_only_keys_and_they_are_renewed(
        scoped_operator, sessions: Sessions):
    stack = sessions.stack
    manifest = sessions.manifest("scoped", retention={"mode": "Compliance", "duration": "1d"})
    manifest["spec"]["storage"]["bucket"] = "e2e-scoped"
    sessions.apply(manifest)
    sessions.wait_phase("scoped", "Recording", timeout=90)
    session = sessions.get("scoped")
    uid = session["metadata"]["uid"]

    secret = _secret(sessions, "scoped-storage-session")
    assert secret is not None
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RecordingSession", uid, True)
    keys = _keys(secret)
    assert set(keys) == {"accessKey", "secretKey", "sessionToken"}
    assert keys["accessKey"] != stack.minio.access_key
    condition = sessions.condition("scoped", "StorageCredentials")
    assert condition["status"] == "True" and "scoped-storage-session" in condition["message"]
    assert "StorageCredentialsIssued" in {e["reason"] for e in sessions.events("scoped")}

    # The long-lived key never reaches the pod: only the per-session Secret is named.
    # (The spec in the pod's env still names the Secret: a name, no key.)
    (pod,) = sessions.pods("scoped")
    assert stack.minio.secret_key not in json.dumps(pod)
    (container,) = pod["spec"]["containers"]
    secrets_used = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
                    if "secretKeyRef" in (e.get("valueFrom") or {})}
    secrets_used |= {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert "minio-creds" not in secrets_used, secrets_used
    assert "scoped-storage-session" in secrets_used, secrets_used
    # The operator made the bucket, with object lock.
    assert stack.minio.client().get_object_lock_config("e2e-scoped") is not None

    scoped = Minio(stack.minio.endpoint, access_key=keys["accessKey"],
                   secret_key=keys["secretKey"], session_token=keys["sessionToken"],
                   secure=False, region="us-east-1")
    own = f"recordings/{sessions.namespace}/scoped/{uid}/chunks/00000000.lrec"
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    from minio.commonconfig import COMPLIANCE
    from minio.retention import Retention
    scoped.put_object("e2e-scoped", own, io.BytesIO(b"chunk"), 5,
                      retention=Retention(COMPLIANCE, until))
    for refused in (
        lambda: scoped.put_object("e2e-scoped", f"recordings/{sessions.namespace}/other/x",
                                  io.BytesIO(b"x"), 1),
        lambda: scoped.get_object("e2e-scoped", own),
        lambda: scoped.remove_object("e2e-scoped", own),
        lambda: list(scoped.list_objects("e2e-scoped", prefix="recordings/")),
    ):
        with pytest.raises(S3Error) as caught:
            refused()
        assert caught.value.code == "AccessDenied"

    # Renewal: make the keys look nearly expired; the operator's timer replaces them.
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sessions.core.patch_namespaced_secret("scoped-storage-session", sessions.namespace,
                                          {"metadata": {"annotations": {EXPIRES_ANNOTATION: soon}}})
    renewed = wait_for(lambda: (s := _secret(sessions, "scoped-storage-session")) and
                       _keys(s)["accessKey"] != keys["accessKey"] and s, 75,
                       "the operator to renew the scoped keys")
    assert renewed["metadata"]["annotations"][EXPIRES_ANNOTATION] > soon
    assert renewed["metadata"]["uid"] == secret["metadata"]["uid"]  # same Secret, new keys
    wait_for(lambda: "StorageCredentialsRenewed" in {e["reason"] for e in
                                                    sessions.events("scoped")},
             30, "a StorageCredentialsRenewed event")


def test_a_key_sts_refuses_keeps_the_session_pending_with_the_reason(
        scoped_operator, sessions: Sessions):
    sessions.secret("bad-creds", {"accessKey": sessions.stack.minio.access_key,
                                  "secretKey": "not-the-secret"})
    manifest = sessions.manifest("refused")
    manifest["spec"]["storage"]["credentialsSecretRef"] = {"name": "bad-creds"}
    sessions.apply(manifest)
    condition = wait_for(lambda: (c := sessions.condition("refused", "StorageCredentials"))
                         and c["status"] == "False" and c, 60, "StorageCredentials False")
    assert condition["reason"] == "StorageRefused", condition
    assert "not-the-secret" not in json.dumps(sessions.get("refused"))
    ready = sessions.condition("refused", "Ready")
    assert ready["status"] == "False" and ready["reason"] == condition["reason"]
    assert sessions.status("refused").get("phase") == "Pending"
    assert sessions.pods("refused") == []


@pytest.fixture(scope="module")
def seaweed_without_sts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed-no-sts"))
    server.sts = False  # a store with no STS at all
    server.start()
    yield server
    server.stop()


def test_a_store_without_sts_is_a_condition_not_a_traceback(
        scoped_operator, sessions: Sessions, seaweed_without_sts: SeaweedServer):
    store = seaweed_without_sts
    sessions.secret("weed-creds", {"accessKey": store.access_key, "secretKey": store.secret_key})
    manifest = sessions.manifest("nosts")
    manifest["spec"]["storage"].update({"endpoint": store.endpoint, "bucket": "e2e-nosts",
                                        "credentialsSecretRef": {"name": "weed-creds"}})
    sessions.apply(manifest)
    condition = wait_for(lambda: (c := sessions.condition("nosts", "StorageCredentials"))
                         and c["status"] == "False" and c, 60, "StorageCredentials False")
    assert condition["reason"] == "STSUnsupported", condition
    assert condition["message"] == (
        "STS AssumeRole failed (ServiceUnavailable: Service Unavailable): the store offers no "
        "STS; use one that does (MinIO, Ceph RGW, AWS) or set "
        "LUCID_STORAGE_SCOPED_CREDENTIALS=false (chart: operator.storageScopedCredentials) to "
        "give recorders the session's storage Secret"), condition
    assert "Traceback" not in json.dumps(sessions.status("nosts"))
    assert sessions.condition("nosts", "Ready")["reason"] == "STSUnsupported"
    assert "STSUnsupported" in {e["reason"] for e in sessions.events("nosts")}
    assert sessions.pods("nosts") == []
    # The operator still made the bucket with object lock on the long-lived key.
    assert store.client().get_object_lock_config("e2e-nosts") is not None
