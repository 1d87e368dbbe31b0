"""spec.retention on the real MinIO and SeaweedFS: S3 Object Lock on every object the
recorder writes.

The attacker here holds a key that may do anything to the bucket except bypass
governance retention (a leaked recorder key with too broad a policy), or the root key.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.retention import Retention as ObjectRetention

from lucid_common.api import Retention
from lucid_recorder.sealing import Codec, SessionIdentity, compress
from lucid_recorder.sealing import verify as verify_session
from lucid_recorder.storage import (
    ObjectLockUnavailableError,
    ObjectStore,
    RetryPolicy,
    SessionLayout,
    Spool,
    make_client,
    publish_manifest,
    resume,
    upload_pending,
)
from tests.stack import s3servers

pytestmark = pytest.mark.stack

FAST = RetryPolicy(initial_delay=0.2, max_delay=1.0)
WRITER = ("writer", "writer-secret-12345")  # everything on the bucket but the bypass
BYPASSER = ("bypasser", "bypasser-secret-12345")  # the same plus s3:BypassGovernanceRetention
EVERYTHING_BUT_BYPASS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation",
                         "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention",
                         "s3:GetObjectRetention", "s3:GetBucketObjectLockConfiguration",
                         "s3:ListBucketVersions", "s3:GetObjectVersion"]


@pytest.fixture(scope="module", params=s3servers.KINDS)
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[s3servers.S3Server]:
    for server in s3servers.running(request, tmp_path_factory):
        server.add_user(*WRITER, EVERYTHING_BUT_BYPASS)
        server.add_user(*BYPASSER, [*EVERYTHING_BUT_BYPASS, "s3:BypassGovernanceRetention"])
        yield server


def client(s3: s3servers.S3Server, creds: tuple[str, str] | None = None) -> Minio:
    access, secret = creds or (s3.access_key, s3.secret_key)
    return make_client(s3.endpoint, access, secret, secure=False)


def record(s3: s3servers.S3Server, bucket: str, retention: Retention | None, tmp_path,
           chunks: int = 3) -> ObjectStore:
    """A short recording through the real spool and uploader, with the writer's key."""
    session = SessionIdentity(namespace="team", name=f"rec-{uuid.uuid4().hex[:6]}",
                              uid=str(uuid.uuid4()))
    layout = SessionLayout("recordings", session)
    # The bucket is made by an admin (on SeaweedFS creating buckets takes its Admin action,
    # which also bypasses governance); the recording is written with the writer's key.
    ObjectStore(client(s3), bucket, layout, retention=retention).ensure_bucket(create=True)
    store = ObjectStore(client(s3, WRITER), bucket, layout, retention=retention)
    store.ensure_bucket(create=False)
    recipient = X25519PrivateKey.generate()
    spool = Spool(tmp_path / f"spool-{session.name}", 64 << 20, session)
    sealer = resume(spool, store, recipient.public_key())
    for seq in range(chunks):
        payload = f"frame {seq} ".encode() * 2000 + os.urandom(64)
        spool.seal_into(sealer, compress(payload, Codec.ZSTD, 3), seq * 10, seq * 10 + 9)
    publish_manifest(spool, store, recipient.public_key(), FAST, complete=False,
                     sealer=sealer)
    assert upload_pending(spool, store, FAST).uploaded == chunks
    publish_manifest(spool, store, recipient.public_key(), FAST, complete=True,
                     sealer=sealer)
    report = verify_session(store.get_manifest(), store.chunks(), recipient)
    assert report.ok and report.complete, report.lines()
    return store


def versions(c: Minio, bucket: str, key: str) -> list:
    return [o for o in c.list_objects(bucket, prefix=key, include_version=True)
            if o.object_name == key and not o.is_delete_marker]


# MinIO answers a locked version's delete with InvalidRequest "Object is WORM protected
# and cannot be overwritten", a refused bypass or retention change with AccessDenied.
REFUSALS = {"AccessDenied", "InvalidRequest"}


def refused(call) -> S3Error:
    with pytest.raises(S3Error) as caught:
        call()
    assert caught.value.code in REFUSALS, caught.value
    return caught.value


def bypass_delete(c: Minio, bucket: str, key: str, version: str) -> list:
    return list(c.remove_objects(bucket, [DeleteObject(key, version)],
                                 bypass_governance_mode=True))


def test_compliance_retention_holds_against_the_writer_and_root(s3, tmp_path):
    bucket = f"worm-{uuid.uuid4().hex[:8]}"
    before = dt.datetime.now(dt.UTC)
    store = record(s3, bucket, Retention(mode="Compliance", duration="2d"), tmp_path)
    root, writer = client(s3), client(s3, WRITER)
    assert root.get_object_lock_config(bucket) is not None  # created with the lock
    keys = [store.layout.chunk_key(seq) for seq in range(3)] + [store.layout.manifest_key]
    for key in keys:
        for version in versions(root, bucket, key):
            retention = root.get_object_retention(bucket, key, version.version_id)
            assert retention.mode == COMPLIANCE, key
            until = retention.retain_until_date
            assert before + dt.timedelta(days=2) <= until
            assert until <= dt.datetime.now(dt.UTC) + dt.timedelta(days=2, seconds=2)

    key = store.layout.chunk_key(1)
    (original,) = versions(root, bucket, key)
    original_bytes = store.get_chunk(1)
    for who, c in (("writer", writer), ("root", root)):
        # Deleting the stored version, shortening its retention, or switching it to
        # Governance: all refused, whoever asks, with or without the bypass header.
        refused(lambda c=c: c.remove_object(bucket, key, version_id=original.version_id))
        errors = bypass_delete(c, bucket, key, original.version_id)
        assert len(errors) == 1 and errors[0].code in REFUSALS, (who, errors)
        for mode, days in ((COMPLIANCE, 1), (GOVERNANCE, 3)):
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
            refused(lambda c=c, mode=mode, until=until: c.set_object_retention(
                bucket, key, ObjectRetention(mode, until), version_id=original.version_id))
        # An overwrite of the key adds a version; the locked one stays as it was.
        c.put_object(bucket, key, io.BytesIO(b"forged"), 6)
        # A delete without a version only hides it behind a delete marker.
        c.remove_object(bucket, key)
    kept = root.get_object(bucket, key, version_id=original.version_id)
    try:
        assert kept.read() == original_bytes, "the locked version changed"
    finally:
        kept.close()
        kept.release_conn()
    assert [v.version_id for v in versions(root, bucket, key)
            if v.version_id == original.version_id] == [original.version_id]


def test_governance_bypass_needs_the_permission_and_the_header(s3, tmp_path):
    bucket = f"gov-{uuid.uuid4().hex[:8]}"
    store = record(s3, bucket, Retention(mode="Governance", duration="1d"), tmp_path)
    root = client(s3)
    key = store.layout.chunk_key(0)
    (original,) = versions(root, bucket, key)
    assert root.get_object_retention(bucket, key, original.version_id).mode == GOVERNANCE
    # Without s3:BypassGovernanceRetention: refused with the header and without.
    writer = client(s3, WRITER)
    refused(lambda: writer.remove_object(bucket, key, version_id=original.version_id))
    errors = bypass_delete(writer, bucket, key, original.version_id)
    assert len(errors) == 1 and errors[0].code in REFUSALS, errors
    # With the permission but without the header: still refused, root included.
    bypasser = client(s3, BYPASSER)
    refused(lambda: bypasser.remove_object(bucket, key, version_id=original.version_id))
    refused(lambda: root.remove_object(bucket, key, version_id=original.version_id))
    assert versions(root, bucket, key)
    # The permission and the explicit header together: the one way through.
    assert bypass_delete(bypasser, bucket, key, original.version_id) == []
    assert versions(root, bucket, key) == []


def test_a_bucket_without_object_lock_is_refused_clearly(s3, tmp_path):
    bucket = f"plain-{uuid.uuid4().hex[:8]}"
    client(s3).make_bucket(bucket)  # created by someone else, without the lock
    session = SessionIdentity(namespace="team", name="unlocked", uid=str(uuid.uuid4()))
    layout = SessionLayout("recordings", session)
    retention = Retention(mode="Compliance", duration="1d")
    # Credentials that may read the bucket's lock configuration refuse before recording.
    with pytest.raises(ObjectLockUnavailableError) as caught:
        ObjectStore(client(s3), bucket, layout, retention=retention).ensure_bucket(create=True)
    message = str(caught.value)
    assert f"bucket {bucket} has no S3 Object Lock" in message
    assert "spec.retention cannot be honoured" in message
    assert "ObjectLockConfigurationNotFoundError" in message
    # The writer's key (on SeaweedFS it may not read the lock configuration) learns it at
    # the first upload, with the same message, and nothing is stored without retention.
    store = ObjectStore(client(s3, WRITER), bucket, layout, retention=retention)
    with pytest.raises(ObjectLockUnavailableError, match=f"bucket {bucket} has no S3 Object "
                       "Lock .*uploading .*00000000.lrec"):
        store.put_chunk(0, b"sealed bytes", None)
    assert list(client(s3).list_objects(bucket, recursive=True)) == []
    # Without spec.retention the same bucket is fine.
    ObjectStore(client(s3, WRITER), bucket, SessionLayout("recordings", session)
                ).ensure_bucket(create=False)


def test_buckets_lucid_creates_have_object_lock_even_without_retention(s3, tmp_path):
    bucket = f"new-{uuid.uuid4().hex[:8]}"
    record(s3, bucket, None, tmp_path, chunks=1)
    root = client(s3)
    assert root.get_object_lock_config(bucket) is not None
    # No retention asked: objects carry none, so they can be deleted as before.
    (obj,) = [o for o in root.list_objects(bucket, recursive=True, include_version=True)
              if o.object_name.endswith(".lrec")]
    # MinIO answers NoSuchObjectLockConfiguration (minio-py returns None), SeaweedFS
    # ObjectLockConfigurationNotFoundError: both mean the object has no retention.
    try:
        assert root.get_object_retention(bucket, obj.object_name) is None
    except S3Error as exc:
        assert exc.code == "ObjectLockConfigurationNotFoundError", exc
    root.remove_object(bucket, obj.object_name, version_id=obj.version_id)
    assert versions(root, bucket, obj.object_name) == []
