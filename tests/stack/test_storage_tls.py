"""The object store over HTTPS with a private CA, on the real MinIO (MinioServer(tls=True)).

The operator reads the CA from the session's Secret once and trusts it for the bucket
check, STS AssumeRole, the resume point and seals; the recorder trusts the same bundle,
mounted as a file. A CA that did not sign the store's certificate is refused by each of
them with a message that says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.api import RecordingSessionSpec
from lucid_common.contract import (
    STORAGE_ACCESS_KEY_FILE,
    STORAGE_SECRET_KEY_FILE,
    STORAGE_SESSION_TOKEN_FILE,
)
from lucid_common.layout import session_root
from lucid_devstack.certs import LocalCA
from lucid_devstack.minio import MINIO_CA_NAME, MinioServer
from lucid_operator import resume_point, storage_access
from lucid_operator.builders import SessionRef
from lucid_operator.seal_store import client_for
from lucid_operator.settings import OperatorSettings
from lucid_operator.sts import StsError, assume_role, session_policy
from lucid_recorder.sealing import Codec, SessionIdentity, compress
from lucid_recorder.sealing.verify import verify
from lucid_recorder.storage import (
    ObjectStore,
    RetryPolicy,
    Spool,
    TransientStorageError,
    publish_manifest,
    upload_pending,
)
from lucid_recorder.storage.credentials import MountedCredentials
from lucid_recorder.storage.from_spec import object_store
from lucid_recorder.storage.uploader import resume

pytestmark = pytest.mark.stack

FAST = RetryPolicy(initial_delay=0.2, max_delay=1.0, max_attempts=2)
BUCKET = "tls-recordings"
SETTINGS = OperatorSettings(storage_scoped_credentials=True,
                            storage_credentials_duration_seconds=900)


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(tmp_path_factory.mktemp("minio-tls"), tls=True).start()
    yield server
    server.stop()


# What OpenSSL says of each: no CA of the issuer's name, or one whose key did not sign.
WRONG_CAS = {"another CA": "unable to get local issuer certificate",
             "an impostor of the same name": "certificate signature failure"}


@pytest.fixture(scope="module", params=list(WRONG_CAS))
def wrong_ca(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, str]:
    """A CA that signed nothing the store presents, and why OpenSSL refuses it."""
    name = MINIO_CA_NAME if request.param == "an impostor of the same name" else "other-ca"
    pem = LocalCA(tmp_path_factory.mktemp("wrong-ca"), name).cert_path.read_text()
    return pem, WRONG_CAS[request.param]


class Secrets:
    """The Secrets of one namespace, as the operator's Kube reads and writes them."""

    def __init__(self, minio: MinioServer, ca_pem: str) -> None:
        self.data = {
            "minio-creds": {"accessKey": minio.access_key, "secretKey": minio.secret_key},
            "store-ca": {"ca.crt": ca_pem},
        }
        self.objects: dict[str, dict[str, Any]] = {}

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.data.get(name)
        return None if found is None else {k: base64.b64encode(v.encode()).decode()
                                           for k, v in found.items()}

    def read_secret_object(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    def put_secret(self, manifest: dict[str, Any]) -> bool:
        self.objects[manifest["metadata"]["name"]] = manifest
        return True


def spec_for(minio: MinioServer) -> RecordingSessionSpec:
    return RecordingSessionSpec.model_validate({
        "target": {"host": "rdp", "credentialsSecretRef": {"name": "rdp"}},
        "storage": {"endpoint": minio.endpoint, "bucket": BUCKET,
                    "credentialsSecretRef": {"name": "minio-creds"},
                    "tls": {"enabled": True, "caSecretRef": {"name": "store-ca"}}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "key"}},
    })


def a_session() -> tuple[SessionRef, dict[str, Any], SessionIdentity]:
    name = f"tls-{uuid.uuid4().hex[:6]}"
    ref = SessionRef("team", name, str(uuid.uuid4()))
    cr = {"apiVersion": "lucid.dev/v1alpha1", "kind": "RecordingSession",
          "metadata": {"name": name, "namespace": "team", "uid": ref.uid}}
    return ref, cr, SessionIdentity(namespace="team", name=name, uid=ref.uid)


def mount(secret: dict[str, Any], directory: Path) -> Path:
    """The per-session Secret as the kubelet mounts it into the recorder pod."""
    directory.mkdir(parents=True)
    for key, value in secret["data"].items():
        (directory / key).write_bytes(base64.b64decode(value))
    assert {p.name for p in directory.iterdir()} == {
        STORAGE_ACCESS_KEY_FILE, STORAGE_SECRET_KEY_FILE, STORAGE_SESSION_TOKEN_FILE}
    return directory


def test_scoped_recording_over_tls_with_the_private_ca(minio, tmp_path):
    """The operator checks the bucket and gets STS keys over HTTPS trusting the Secret's
    CA; the recorder, trusting the same bundle mounted as a file, stores a recording with
    those keys; the operator's resume point reads it back over HTTPS; it verifies."""
    spec = spec_for(minio)
    kube = Secrets(minio, minio.ca_pem)
    ref, cr, me = a_session()
    condition, what = storage_access.ensure_session_credentials(
        kube, SETTINGS, cr, ref, spec)  # type: ignore[arg-type]
    assert (condition.status, condition.reason, what) == (True, "Issued", "Issued"), condition
    assert minio.client().bucket_exists(BUCKET)  # made by the operator's check

    ca_dir = tmp_path / "storage-ca"
    ca_dir.mkdir()
    (ca_dir / "ca.crt").write_text(minio.ca_pem)
    keys = mount(kube.objects[f"{ref.name}-storage-session"], tmp_path / "creds")
    store = object_store(spec.storage, me, ca_dir=ca_dir,
                         credentials=MountedCredentials(keys, "Secret session"))
    store.ensure_bucket(spec.storage.create_bucket)
    recipient = X25519PrivateKey.generate()
    spool = Spool(tmp_path / "spool", 64 << 20, me)
    sealer = resume(spool, None, recipient.public_key())
    for seq in range(3):
        spool.seal_into(sealer, compress(b"over tls %d " % seq * 400, Codec.ZSTD, 3),
                        seq, seq + 1)
    assert upload_pending(spool, store, FAST).uploaded == 3
    publish_manifest(spool, store, recipient.public_key(), FAST, complete=True, sealer=sealer)

    root = session_root(spec.storage.key_prefix, ref.namespace, ref.name, ref.uid)
    point = resume_point.take(client_for(kube, ref.namespace, spec),  # type: ignore[arg-type]
                              BUCKET, root, ref.uid, dt.datetime.now(dt.UTC))
    assert point.chunk_seqs == [0, 1, 2] and point.manifest is not None

    reader = ObjectStore(minio.client(), BUCKET, store.layout)
    report = verify(reader.get_manifest(), reader.chunks(), recipient, session=me)
    assert report.ok and report.chunks_authentic == 3, report.problems


def test_a_ca_that_did_not_sign_the_store_is_refused_by_name(minio, wrong_ca, tmp_path):
    wrong_ca, why = wrong_ca
    spec = spec_for(minio)
    kube = Secrets(minio, wrong_ca)
    ref, cr, me = a_session()
    condition, _ = storage_access.ensure_session_credentials(
        kube, SETTINGS, cr, ref, spec)  # type: ignore[arg-type]
    assert (condition.status, condition.reason) == (False, "StorageCertificateUntrusted")
    assert condition.message == (
        f"object store {minio.endpoint}: TLS certificate not trusted (certificate verify "
        f"failed: {why}); it was checked against the CA bundle in Secret "
        '"store-ca" key "ca.crt" (storage.tls.caSecretRef)')
    assert kube.objects == {}  # no keys issued

    # STS itself, and the resume point, say the same.
    with pytest.raises(StsError) as refused:
        assume_role(minio.endpoint, minio.access_key, minio.secret_key,
                    session_policy(BUCKET, "recordings/team/x/y/", False), secure=True,
                    duration=900, session_name="lucid-x", ca_cert_data=wrong_ca)
    assert str(refused.value) == (f"STS at {minio.endpoint}: TLS certificate not trusted "
                                  f"(certificate verify failed: {why})")
    root = session_root("recordings", ref.namespace, ref.name, ref.uid)
    with pytest.raises(resume_point.ResumePointError) as unread:
        resume_point.take(client_for(kube, ref.namespace, spec),  # type: ignore[arg-type]
                          BUCKET, root, ref.uid, dt.datetime.now(dt.UTC))
    assert str(unread.value) == (f"object store TLS certificate not trusted (certificate "
                                 f"verify failed: {why}) while reading {root}")

    # The recorder's store names it too (and keeps retrying: a certificate may be mid-
    # rotation, and giving up on a chunk is the worse mistake).
    ca_dir = tmp_path / "wrong-ca"
    ca_dir.mkdir()
    (ca_dir / "ca.crt").write_text(wrong_ca)
    store = object_store(spec.storage, me, minio.access_key, minio.secret_key, ca_dir=ca_dir)
    with pytest.raises(TransientStorageError) as caught:
        store.put_chunk(0, b"never stored", None)
    assert f"object store's TLS certificate not trusted (certificate verify failed: {why})" \
        in str(caught.value), caught.value
    assert "the recorder: storage.tls.caSecretRef; lucid-seal and lucid-play: --ca-file" \
        in str(caught.value)


def test_a_ca_secret_that_is_no_pem_is_named_before_any_connection(minio):
    kube = Secrets(minio, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
    ref, cr, _ = a_session()
    condition, _ = storage_access.ensure_session_credentials(
        kube, SETTINGS, cr, ref, spec_for(minio))  # type: ignore[arg-type]
    assert (condition.status, condition.reason) == (False, "StorageCAInvalid"), condition
    assert condition.message.startswith('Secret "store-ca" key "ca.crt" '
                                        "(storage.tls.caSecretRef) holds no PEM certificate")
    assert "not base64 at all" not in condition.message
