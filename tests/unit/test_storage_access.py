"""The operator's scoped-credential edge with fakes: which condition each answer becomes.

The real STS and buckets are exercised in tests/stack/test_scoped_credentials.py and
tests/e2e/test_scoped_credentials_e2e.py; this pins the mapping and the renewal decision.
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
from typing import Any

import pytest
import urllib3

from lucid_common.api import RecordingSessionSpec
from lucid_common.api.spec import CaSecretRef, StorageTls
from lucid_devstack.certs import LocalCA
from lucid_operator import storage_access
from lucid_operator.builders import SessionRef
from lucid_operator.settings import OperatorSettings
from lucid_operator.sts import EXPIRES_ANNOTATION, StsError, TemporaryCredentials

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
REF = SessionRef("team-a", "demo", "u-1")
SESSION = {"apiVersion": "lucid.dev/v1alpha1", "kind": "RecordingSession",
           "metadata": {"name": "demo", "namespace": "team-a", "uid": "u-1"}}
SPEC = RecordingSessionSpec.model_validate({
    "target": {"host": "rdp", "credentialsSecretRef": {"name": "rdp"}},
    "storage": {"endpoint": "minio:9000", "bucket": "rec", "tls": {"enabled": False},
                "credentialsSecretRef": {"name": "s3"}},
    "encryption": {"recipientPublicKeySecretRef": {"name": "key"}},
    "retention": {"mode": "Compliance", "duration": "30d"},
})
SETTINGS = OperatorSettings(storage_scoped_credentials=True,
                            storage_credentials_duration_seconds=3600)


class FakeKube:
    def __init__(self, session_secret: dict[str, Any] | None = None,
                 ca: dict[str, str] | None = None) -> None:
        self.session_secret = session_secret
        self.ca = ca
        self.put: list[dict[str, Any]] = []
        self.reads: list[str] = []

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        assert namespace == "team-a"
        self.reads.append(name)
        if name == "store-ca":
            return self.ca
        assert name == "s3"
        return {"accessKey": base64.b64encode(b"LONGLIVED").decode(),
                "secretKey": base64.b64encode(b"long-secret").decode()}

    def read_secret_object(self, namespace: str, name: str) -> dict[str, Any] | None:
        assert name == "demo-storage-session"
        return self.session_secret

    def put_secret(self, manifest: dict[str, Any]) -> bool:
        self.put.append(manifest)
        return True


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(storage_access, "check_bucket", lambda client, spec: None)

    def assume(endpoint: str, access: str, secret: str, policy: dict, **kw: Any
               ) -> TemporaryCredentials:
        seen.append({"access": access, "policy": policy, **kw})
        return TemporaryCredentials("ASIA", "tmp", "tok", NOW + dt.timedelta(hours=1))

    monkeypatch.setattr(storage_access, "assume_role", assume)
    return seen


def valid_until(moment: dt.datetime) -> dict[str, Any]:
    return {"metadata": {"annotations": {
        EXPIRES_ANNOTATION: moment.strftime("%Y-%m-%dT%H:%M:%SZ")}}}


def test_first_keys_are_issued_with_the_session_policy(calls) -> None:
    kube = FakeKube()
    condition, what = storage_access.ensure_session_credentials(
        kube, SETTINGS, SESSION, REF, SPEC, NOW)
    assert (condition.status, condition.reason, what) == (True, "Issued", "Issued")
    assert "valid until 2026-12-07T11:00:00Z" in condition.message
    (call,) = calls
    assert call["access"] == "LONGLIVED" and call["duration"] == 3600
    assert call["policy"]["Statement"][0]["Resource"] == [
        "arn:aws:s3:::rec/recordings/team-a/demo/u-1/*"]
    assert "s3:PutObjectRetention" in call["policy"]["Statement"][0]["Action"]
    (secret,) = kube.put
    assert secret["metadata"]["name"] == "demo-storage-session"
    assert "long-secret" not in str(secret) and "long-secret" not in condition.message


def test_fresh_keys_are_left_alone_and_old_ones_renewed(calls) -> None:
    fresh = FakeKube(valid_until(NOW + dt.timedelta(minutes=50)))
    condition, what = storage_access.ensure_session_credentials(
        fresh, SETTINGS, SESSION, REF, SPEC, NOW)
    assert (condition.status, what, calls, fresh.put) == (True, "", [], [])
    old = FakeKube(valid_until(NOW + dt.timedelta(minutes=10)))
    condition, what = storage_access.ensure_session_credentials(
        old, SETTINGS, SESSION, REF, SPEC, NOW)
    assert (condition.status, what, len(old.put)) == (True, "Renewed", 1)


@pytest.mark.parametrize(("error", "reason", "text"), [
    (StsError("STS AssumeRole failed (HTTP 503)", unsupported=True), "STSUnsupported",
     "the store offers no STS"),
    (StsError("STS AssumeRole failed (AccessDenied: no)"), "AssumeRoleFailed",
     "STS AssumeRole failed (AccessDenied: no)"),
])
def test_sts_refusals_become_the_condition(monkeypatch, calls, error, reason, text) -> None:
    def refuse(*_a: Any, **_k: Any) -> TemporaryCredentials:
        raise error

    monkeypatch.setattr(storage_access, "assume_role", refuse)
    kube = FakeKube()
    condition, what = storage_access.ensure_session_credentials(
        kube, SETTINGS, SESSION, REF, SPEC, NOW)
    assert (condition.type, condition.status, condition.reason, what) == \
        ("StorageCredentials", False, reason, "")
    assert text in condition.message and kube.put == []


def test_bucket_problems_become_the_condition(monkeypatch, calls) -> None:
    def no_lock(client: Any, spec: Any) -> None:
        raise storage_access.StorageProblem("ObjectLockMissing", "bucket rec has no S3 Object "
                                            "Lock")

    monkeypatch.setattr(storage_access, "check_bucket", no_lock)
    condition, _ = storage_access.ensure_session_credentials(
        FakeKube(), SETTINGS, SESSION, REF, SPEC, NOW)
    assert (condition.status, condition.reason) == (False, "ObjectLockMissing")
    assert calls == []  # no keys for a bucket that cannot keep the recording


WITH_CA = SPEC.model_copy(update={"storage": SPEC.storage.model_copy(update={
    "tls": StorageTls(enabled=True, ca_secret_ref=CaSecretRef(name="store-ca"))})})


def test_a_private_ca_is_read_once_and_trusted_by_the_check_and_sts(
        monkeypatch, calls, tmp_path) -> None:
    pem = LocalCA(tmp_path).cert_path.read_bytes()
    checked: list[Any] = []
    monkeypatch.setattr(storage_access, "check_bucket",
                        lambda client, spec: checked.append(client))
    kube = FakeKube(ca={"ca.crt": base64.b64encode(pem).decode()})
    condition, what = storage_access.ensure_session_credentials(
        kube, SETTINGS, SESSION, REF, WITH_CA, NOW)
    assert (condition.status, what) == (True, "Issued"), condition
    assert kube.reads.count("store-ca") == 1
    (call,) = calls
    assert call["secure"] is True and call["ca_cert_data"] == pem.decode()
    (client,) = checked
    pool = client._http.connection_pool_kw
    assert pool["ca_cert_data"] == pem.decode() and pool["cert_reqs"] == "CERT_REQUIRED"


def test_a_ca_secret_that_is_no_pem_becomes_the_condition(calls) -> None:
    kube = FakeKube(ca={"ca.crt": base64.b64encode(b"hunter2, not a CA").decode()})
    condition, what = storage_access.ensure_session_credentials(
        kube, SETTINGS, SESSION, REF, WITH_CA, NOW)
    assert (condition.status, condition.reason, what) == (False, "StorageCAInvalid", "")
    assert condition.message.startswith('Secret "store-ca" key "ca.crt"'), condition.message
    assert "hunter2" not in condition.message and calls == [] and kube.put == []


def test_an_untrusted_certificate_at_sts_becomes_the_condition(
        monkeypatch, calls, tmp_path) -> None:
    def untrusted(*_a: Any, **_k: Any) -> TemporaryCredentials:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.verify_message = "self-signed certificate in certificate chain"
        raise StsError("STS at minio:9000: ...") from urllib3.exceptions.SSLError(cause)

    monkeypatch.setattr(storage_access, "assume_role", untrusted)
    condition, _ = storage_access.ensure_session_credentials(
        FakeKube(ca={"ca.crt": base64.b64encode(LocalCA(tmp_path).cert_path.read_bytes())
                     .decode()}), SETTINGS, SESSION, REF, WITH_CA, NOW)
    assert (condition.status, condition.reason) == (False, "StorageCertificateUntrusted")
    assert condition.message == (
        "STS AssumeRole: object store minio:9000: TLS certificate not trusted (certificate "
        "verify failed: self-signed certificate in certificate chain); it was checked "
        'against the CA bundle in Secret "store-ca" key "ca.crt" (storage.tls.caSecretRef)')
