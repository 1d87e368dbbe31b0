"""Trust in a session's store: the CA bundle the operator reads from its Secret (and the
recorder from its mount), and what a failed handshake is called. The real handshakes are
in tests/stack/test_storage_tls.py."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import urllib3

from lucid_common.api import RecordingSessionSpec
from lucid_common.api.spec import CaSecretRef
from lucid_devstack.certs import LocalCA
from lucid_operator import storage_tls
from lucid_operator.storage_tls import StorageProblem, ca_bundle, failure, spec_ca
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.storage.errors import StorageError
from lucid_recorder.storage.from_spec import object_store

REF = CaSecretRef(name="store-ca", key="ca.crt")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spec(tls: dict[str, Any]) -> RecordingSessionSpec:
    return RecordingSessionSpec.model_validate({
        "target": {"host": "rdp", "credentialsSecretRef": {"name": "rdp"}},
        "storage": {"endpoint": "minio:9000", "bucket": "rec", "tls": tls,
                    "credentialsSecretRef": {"name": "s3"}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "key"}},
    })


class Secrets:
    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(name)
        return self.secrets.get(name)


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return LocalCA(tmp_path_factory.mktemp("ca")).cert_path.read_bytes()


def test_a_pem_bundle_is_read_as_its_certificates(ca_pem: bytes, tmp_path: Path) -> None:
    other = LocalCA(tmp_path).cert_path.read_bytes()
    bundle = b"# our CA, \xc3\xa9dition 2\n" + ca_pem + other
    text = ca_bundle(b64(bundle), REF)
    assert text.count("-----BEGIN CERTIFICATE-----") == 2 and "#" not in text
    # ssl takes it as it is (cadata text, no file).
    ssl.create_default_context(cadata=text)


@pytest.mark.parametrize("value", [b64(b"not a certificate"), "%%% not base64 %%%",
                                   b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                       b"-----END CERTIFICATE-----\n")])
def test_a_value_that_is_no_pem_certificate_is_named_not_quoted(value: str) -> None:
    with pytest.raises(StorageProblem) as caught:
        ca_bundle(value, REF)
    assert caught.value.reason == "StorageCAInvalid"
    message = str(caught.value)
    assert message.startswith('Secret "store-ca" key "ca.crt" (storage.tls.caSecretRef) '
                              "holds no PEM certificate"), message
    assert "not a certificate" not in message and "AAAA" not in message


def test_a_missing_secret_or_key_is_named() -> None:
    tls = {"enabled": True, "caSecretRef": {"name": "store-ca"}}
    with pytest.raises(StorageProblem) as caught:
        spec_ca(Secrets({}), "team-a", spec(tls))  # type: ignore[arg-type]
    assert (caught.value.reason, str(caught.value)) == (
        "SecretNotFound", 'Secret "store-ca" not found (storage.tls.caSecretRef)')
    with pytest.raises(StorageProblem) as caught:
        spec_ca(Secrets({"store-ca": {"other": "x"}}), "team-a", spec(tls))  # type: ignore[arg-type]
    assert (caught.value.reason, str(caught.value)) == (
        "SecretKeyMissing", 'Secret "store-ca" has no key "ca.crt" (storage.tls.caSecretRef)')


def test_no_ca_reads_no_secret(ca_pem: bytes) -> None:
    kube = Secrets({"store-ca": {"ca.crt": b64(ca_pem)}})
    assert spec_ca(kube, "team-a", spec({"enabled": True})) is None  # type: ignore[arg-type]
    assert spec_ca(kube, "team-a", spec({"enabled": False})) is None  # type: ignore[arg-type]
    assert kube.reads == []
    found = spec_ca(kube, "team-a",  # type: ignore[arg-type]
                    spec({"enabled": True, "caSecretRef": {"name": "store-ca"}}))
    assert found is not None and found.startswith("-----BEGIN CERTIFICATE-----")


def _untrusted() -> urllib3.exceptions.SSLError:
    cause = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
           "issuer certificate (_ssl.c:1006)")
    cause.verify_message = "unable to get local issuer certificate"
    return urllib3.exceptions.SSLError(cause)


def test_an_untrusted_certificate_is_called_so() -> None:
    assert failure(_untrusted()) == (
        "StorageCertificateUntrusted",
        "TLS certificate not trusted (certificate verify failed: unable to get local issuer "
        "certificate)")
    problem = storage_tls.transport_problem(
        _untrusted(), spec({"enabled": True, "caSecretRef": {"name": "store-ca"}}))
    assert problem.reason == "StorageCertificateUntrusted"
    assert str(problem).endswith('it was checked against the CA bundle in Secret "store-ca" '
                                 'key "ca.crt" (storage.tls.caSecretRef)'), str(problem)
    assert "system's certificate authorities" in str(
        storage_tls.transport_problem(_untrusted(), spec({"enabled": True})))


def test_other_failures_stay_unreachable() -> None:
    handshake = urllib3.exceptions.SSLError(ssl.SSLError(1, "[SSL] wrong version number"))
    handshake.args[0].reason = "WRONG_VERSION_NUMBER"
    assert failure(handshake) == ("StorageUnreachable",
                                  "TLS handshake failed (WRONG_VERSION_NUMBER)")
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    assert failure(refused) == ("StorageUnreachable", "unreachable (NewConnectionError)")


def test_an_untrusted_certificate_after_urllib3_retries_is_found() -> None:
    exhausted = urllib3.exceptions.MaxRetryError(None, "/bucket", _untrusted())  # type: ignore[arg-type]
    assert failure(exhausted)[0] == "StorageCertificateUntrusted"


def test_the_recorder_names_a_mounted_ca_that_is_no_pem(tmp_path: Path, ca_pem: bytes) -> None:
    storage = spec({"enabled": True, "caSecretRef": {"name": "store-ca"}}).storage
    who = SessionIdentity(namespace="team-a", name="demo", uid="u-1")
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    assert object_store(storage, who, "a", "b", ca_dir=tmp_path).bucket == "rec"
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\ntruncated")
    with pytest.raises(StorageError) as caught:
        object_store(storage, who, "a", "b", ca_dir=tmp_path)
    assert str(caught.value) == ('Secret "store-ca" key "ca.crt" (storage.tls.caSecretRef) '
                                 "holds no PEM certificate: the CA bundle must be PEM "
                                 "(-----BEGIN CERTIFICATE-----)")
