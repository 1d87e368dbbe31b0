"""The real recorder on write-only scoped keys, storing over HTTPS to a MinIO whose
certificate only a private CA vouches for (storage.tls.caSecretRef).

The operator (LUCID_STORAGE_SCOPED_CREDENTIALS=true) reads the CA from the session's
Secret and trusts it for the bucket check, STS AssumeRole and the resume point; the
recorder pod trusts the same bundle, mounted; the auditor's `lucid-seal verify` trusts it
with --ca-file. A CA Secret that is wrong in any way keeps the session Pending with a
condition that names it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_devstack.certs import LocalCA
from lucid_devstack.minio import MinioServer
from lucid_devstack.stack import venv_bin
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored
from tests.e2e.test_scoped_recording_e2e import scoped_recorder_operator  # noqa: F401
from tests.faults.support import assert_no_secret_in_logs

pytestmark = pytest.mark.stack

BUCKET = "e2e-tls-recording"


@pytest.fixture(scope="module")
def tls_minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(tmp_path_factory.mktemp("minio-tls"), tls=True).start()
    yield server
    server.stop()


def tls_session(sessions: Sessions, minio: MinioServer, name: str, ca: str,
                ca_key: str = "ca.crt") -> dict:
    """A session storing to `minio` over HTTPS, trusting the CA bundle `ca`."""
    sessions.secret(f"{name}-store", {"accessKey": minio.access_key,
                                      "secretKey": minio.secret_key})
    sessions.secret(f"{name}-ca", {"ca.crt": ca})
    manifest = sessions.manifest(name, chunking={"maxSeconds": 1})
    manifest["spec"]["storage"] = {
        "endpoint": minio.endpoint, "bucket": BUCKET,
        "credentialsSecretRef": {"name": f"{name}-store"},
        "tls": {"enabled": True, "caSecretRef": {"name": f"{name}-ca", "key": ca_key}}}
    return manifest


def seal(minio: MinioServer, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LUCID_S3_ACCESS_KEY": minio.access_key,
           "LUCID_S3_SECRET_KEY": minio.secret_key}
    return subprocess.run([str(venv_bin() / "lucid-seal"), *argv], capture_output=True,
                          text=True, timeout=120, env=env)


def test_write_only_recorder_stores_over_tls_with_a_private_ca(
        scoped_recorder_operator, tls_minio, sessions: Sessions, tmp_path: Path):  # noqa: F811
    stack = sessions.stack
    keys = keygen(tmp_path / "keys")
    manifest = tls_session(sessions, tls_minio, "tls", tls_minio.ca_pem)
    sessions.secret("auditor-tls", {"publicKey": keys.public.read_text()})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "auditor-tls"
    sessions.apply(manifest)
    sessions.wait_phase("tls", "Recording", timeout=120)
    issued = sessions.condition("tls", "StorageCredentials")
    assert issued and issued["status"] == "True" and issued["reason"] == "Issued", issued
    (pod,) = sessions.pods("tls")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["storage-ca"]["secret"]["secretName"] == "tls-ca"
    assert volumes["storage-credentials"]["secret"]["secretName"] == "tls-storage-session"

    stack.desktop.type_text("stored over TLS, trusted by a private CA")
    stack.desktop.press("Return")
    wait_for(lambda: _chunks_stored(sessions, "tls") >= 3, 90, "chunks stored over HTTPS")
    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    status = sessions.wait_phase("tls", "Completed", timeout=120)
    assert status["pipeline"]["state"] == "Finalized", status
    assert_no_secret_in_logs(stack)

    uid = sessions.get("tls")["metadata"]["uid"]
    stored = [o.object_name for o in tls_minio.client().list_objects(
        BUCKET, prefix=f"recordings/{sessions.namespace}/tls/{uid}/chunks/", recursive=True)]
    assert len(stored) >= 3, stored

    source = ["--endpoint", tls_minio.endpoint, "--bucket", BUCKET,
              "--session", f"{sessions.namespace}/tls", "--private-key", str(keys.private)]
    # The auditor's tool trusts nothing it was not told to...
    refused = seal(tls_minio, "verify", *source)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "TLS certificate not trusted (certificate verify failed: unable to get local " \
        "issuer certificate)" in refused.stderr, refused.stderr
    # ...and verifies with the CA given.
    report = seal(tls_minio, "verify", "--json", "--ca-file", str(tls_minio.ca_file), *source)
    assert report.returncode == 0, report.stdout + report.stderr
    result = json.loads(report.stdout)
    assert result["ok"] is True and result["complete"] is True, result
    assert result["chunksAuthentic"] == result["chunksExpected"] == len(stored), result


# (what is wrong, CA Secret content, key named by the session, condition, reason, message)
BAD_CAS = {
    "missing key": (None, "missing.crt", "ReferencesResolved", "SecretKeyMissing",
                    "Secret \"{name}-ca\" has no key 'missing.crt'"),
    "not PEM": ("this is no certificate", "ca.crt", "StorageCredentials", "StorageCAInvalid",
                'Secret "{name}-ca" key "ca.crt" (storage.tls.caSecretRef) holds no PEM '
                "certificate: put the CA bundle there in PEM form (-----BEGIN CERTIFICATE-----)"),
    "another CA": ("other", "ca.crt", "StorageCredentials", "StorageCertificateUntrusted",
                   "object store {endpoint}: TLS certificate not trusted (certificate verify "
                   "failed: unable to get local issuer certificate); it was checked against "
                   'the CA bundle in Secret "{name}-ca" key "ca.crt" (storage.tls.caSecretRef)'),
}


@pytest.mark.parametrize("wrong", list(BAD_CAS))
def test_a_bad_ca_secret_keeps_the_session_pending_and_says_why(
        scoped_recorder_operator, tls_minio, sessions: Sessions, tmp_path: Path,  # noqa: F811
        wrong: str):
    ca, key, kind, reason, message = BAD_CAS[wrong]
    name = wrong.replace(" ", "-").lower()
    if ca == "other":
        ca = LocalCA(tmp_path, "another-ca").cert_path.read_text()
    sessions.apply(tls_session(sessions, tls_minio, name, ca or tls_minio.ca_pem, key))
    expected = message.format(name=name, endpoint=tls_minio.endpoint)
    condition = wait_for(lambda: (c := sessions.condition(name, kind)) and
                         c["status"] == "False" and c, 60, f"{kind} False")
    assert (condition["reason"], condition["message"]) == (reason, expected), condition
    status = sessions.status(name)
    assert status["phase"] == "Pending", status
    ready = sessions.condition(name, "Ready")
    assert ready["status"] == "False" and ready["reason"] == reason, ready
    assert ready["message"].startswith(expected), ready
    assert sessions.pods(name) == []  # no recorder starts on a store it cannot trust
    if kind == "StorageCredentials":
        warned = [e for e in sessions.events(name) if e["reason"] == reason]
        assert warned and warned[0]["type"] == "Warning", sessions.events(name)
    assert "this is no certificate" not in json.dumps(sessions.get(name))
