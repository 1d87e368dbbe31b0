"""Per-session STS credentials on the real MinIO and SeaweedFS: the operator's AssumeRole
with the session policy yields keys that can write the session's own objects and nothing
else: no other prefix, no read, no delete, no listing, no bucket configuration."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from minio import Minio
from minio.error import S3Error

from lucid_common.api import Retention
from lucid_common.contract import RESUME_FILE
from lucid_common.resume import encode
from lucid_devstack.seaweedfs import STS_ROLE_ARN, SeaweedServer
from lucid_operator import resume_point
from lucid_operator.sts import StsError, assume_role, session_policy, session_prefix
from lucid_recorder.sealing import Codec, SessionIdentity, compress
from lucid_recorder.sealing.verify import verify
from lucid_recorder.storage import (
    ObjectStore,
    RetryPolicy,
    SessionLayout,
    Spool,
    StoragePermissionError,
    make_client,
    publish_manifest,
    upload_pending,
)
from lucid_recorder.storage.errors import StorageError
from lucid_recorder.storage.recovery import HandedOver, recover_state
from lucid_recorder.storage.uploader import resume
from tests.stack import s3servers

pytestmark = pytest.mark.stack

FAST = RetryPolicy(initial_delay=0.2, max_delay=1.0)
BUCKET = "scoped"


@pytest.fixture(scope="module", params=s3servers.KINDS)
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[s3servers.S3Server]:
    yield from s3servers.running(request, tmp_path_factory)


def session() -> SessionIdentity:
    return SessionIdentity(namespace="team", name=f"s-{uuid.uuid4().hex[:6]}",
                           uid=str(uuid.uuid4()))


def scoped_client(s3: s3servers.S3Server, who: SessionIdentity, retention: bool) -> Minio:
    prefix = session_prefix("recordings", who.namespace, who.name, who.uid)
    creds = assume_role(s3.endpoint, s3.access_key, s3.secret_key,
                        session_policy(BUCKET, prefix, retention), secure=False,
                        duration=900, session_name=f"lucid-{who.name}",
                        role_arn=STS_ROLE_ARN if s3.kind == "seaweedfs" else None)
    assert creds.expiration > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    assert creds.session_token and creds.access_key != s3.access_key
    assert s3.secret_key not in repr(creds) and creds.secret_key not in repr(creds)
    # The region is pinned as the recorder pins it: the keys may not look it up elsewhere.
    return Minio(s3.endpoint, access_key=creds.access_key, secret_key=creds.secret_key,
                 session_token=creds.session_token, secure=False, region="us-east-1")


def denied(call) -> None:
    with pytest.raises(S3Error) as caught:
        call()
    assert caught.value.code == "AccessDenied", caught.value


@pytest.mark.parametrize("retained", [False, True], ids=["plain", "retention"])
def test_session_keys_write_only_their_own_prefix(s3, tmp_path, retained: bool):
    root = make_client(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    retention = Retention(mode="Compliance", duration="1d") if retained else None
    me, other = session(), session()
    # The operator, with the long-lived key, makes the bucket (with object lock).
    ObjectStore(root, BUCKET, SessionLayout("recordings", me), retention=retention
                ).ensure_bucket(create=True)
    theirs = ObjectStore(root, BUCKET, SessionLayout("recordings", other))
    theirs.put_chunk(0, b"another session's chunk", None)

    mine = ObjectStore(scoped_client(s3, me, retained), BUCKET,
                       SessionLayout("recordings", me), retention=retention)
    # The keys may not look at the bucket; the recorder's check steps aside for them.
    denied(lambda: mine.client.bucket_exists(BUCKET))
    mine.ensure_bucket(create=True)
    recipient = X25519PrivateKey.generate()
    spool = Spool(tmp_path / "spool", 64 << 20, me)
    sealer = resume(spool, None, recipient.public_key())  # nothing to recover: a new session
    for seq in range(3):
        spool.seal_into(sealer, compress(b"screen %d " % seq * 500, Codec.ZSTD, 3), seq, seq + 1)
    assert upload_pending(spool, mine, FAST).uploaded == 3
    publish_manifest(spool, mine, recipient.public_key(), FAST, complete=True,
                     sealer=sealer)
    stored = sorted(o.object_name for o in root.list_objects(
        BUCKET, prefix=mine.layout.root, recursive=True))
    assert stored == [mine.layout.chunk_key(s) for s in range(3)] + [mine.layout.manifest_key]
    if retained:
        assert root.get_object_retention(BUCKET, mine.layout.chunk_key(0)).mode == "COMPLIANCE"

    scoped = mine.client
    # Another session's prefix: neither a new object nor an overwrite.
    denied(lambda: scoped.put_object(BUCKET, theirs.layout.chunk_key(1), io.BytesIO(b"x"), 1))
    denied(lambda: scoped.put_object(BUCKET, theirs.layout.chunk_key(0), io.BytesIO(b"x"), 1))
    denied(lambda: scoped.put_object(BUCKET, "elsewhere/object", io.BytesIO(b"x"), 1))
    # No reading, not even its own objects; no listing; no deleting.
    denied(lambda: scoped.get_object(BUCKET, mine.layout.chunk_key(0)))
    denied(lambda: scoped.stat_object(BUCKET, mine.layout.manifest_key))
    denied(lambda: scoped.get_object(BUCKET, theirs.layout.chunk_key(0)))
    denied(lambda: list(scoped.list_objects(BUCKET, prefix=mine.layout.root)))
    denied(lambda: scoped.remove_object(BUCKET, mine.layout.chunk_key(1)))
    denied(lambda: scoped.remove_object(BUCKET, theirs.layout.chunk_key(0)))
    # Nor the bucket's configuration.
    denied(lambda: scoped.delete_object_lock_config(BUCKET))
    denied(lambda: scoped.make_bucket(f"new-{uuid.uuid4().hex[:8]}"))
    assert [o.object_name for o in root.list_objects(BUCKET, prefix=theirs.layout.root,
                                                     recursive=True)] == \
        [theirs.layout.chunk_key(0)]
    # A recorder with these keys cannot resume from the store: it is told so, plainly.
    # (The operator's resume point stands in, below.)
    with pytest.raises(StoragePermissionError, match="access denied while reading"):
        mine.recover_state()


def test_a_new_pod_with_write_only_keys_continues_after_the_operators_resume_point(
        s3, tmp_path):
    """Pod 0 stores five chunks, the manifest listing three; pod 1 (empty spool, keys that
    cannot read) continues from what the operator read with the long-lived key: chunk 5,
    a new epoch, the chain unbroken, nothing overwritten."""
    root = make_client(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    me = session()
    layout = SessionLayout("recordings", me)
    ObjectStore(root, BUCKET, layout).ensure_bucket(create=True)
    recipient = X25519PrivateKey.generate()
    first = ObjectStore(scoped_client(s3, me, False), BUCKET, layout)
    spool = Spool(tmp_path / "spool-0", 64 << 20, me)
    sealer = resume(spool, None, recipient.public_key())
    for seq in range(5):
        spool.seal_into(sealer, compress(b"screen %d " % seq * 500, Codec.ZSTD, 3), seq, seq + 1)
        if seq == 2:
            assert upload_pending(spool, first, FAST).uploaded == 3
            publish_manifest(spool, first, recipient.public_key(), FAST, complete=False,
                             sealer=sealer)
    assert upload_pending(spool, first, FAST).uploaded == 2  # pod 0 is lost here

    point = resume_point.take(root, BUCKET, layout.root, me.uid, dt.datetime.now(dt.UTC))
    assert point.chunk_seqs == [0, 1, 2, 3, 4]
    assert [c.seq for c in point.unlisted] == [3, 4]  # after the manifest's last write
    mounted = tmp_path / "resume" / RESUME_FILE
    mounted.parent.mkdir()
    mounted.write_bytes(encode(point))
    handed = HandedOver.load(mounted, me)
    expected = ObjectStore(root, BUCKET, layout).recover_state()
    assert recover_state(handed, me) == expected

    second = ObjectStore(scoped_client(s3, me, False), BUCKET, layout)
    spool = Spool(tmp_path / "spool-1", 64 << 20, me)
    sealer = resume(spool, second, recipient.public_key(), handed)
    assert (sealer.next_seq, sealer.epoch) == (5, 1)
    for seq in range(5, 7):
        spool.seal_into(sealer, compress(b"later %d " % seq * 500, Codec.ZSTD, 3), seq, seq + 1)
    assert upload_pending(spool, second, FAST).uploaded == 2
    publish_manifest(spool, second, recipient.public_key(), FAST, complete=True, sealer=sealer)

    reader = ObjectStore(root, BUCKET, layout)
    report = verify(reader.get_manifest(), reader.chunks(), recipient, session=me)
    assert report.ok and report.complete, report.problems
    assert report.chunks_authentic == report.chunks_expected == 7
    assert sorted(report.epochs) == [0, 1]


def test_a_resume_point_of_another_session_or_damaged_is_refused(s3, tmp_path):
    me, other = session(), session()
    point = resume_point.take(make_client(s3.endpoint, s3.access_key, s3.secret_key,
                                          secure=False),
                              BUCKET, SessionLayout("recordings", other).root, other.uid,
                              dt.datetime.now(dt.UTC))
    assert point.empty  # nothing stored yet: a first pod starts at chunk 0
    mounted = tmp_path / RESUME_FILE
    mounted.write_bytes(encode(point))
    with pytest.raises(StorageError, match=f"is of session {other.uid}, not {me.uid}"):
        HandedOver.load(mounted, me)
    mounted.write_bytes(b"not gzip")
    with pytest.raises(StorageError, match="the resume point is unreadable"):
        HandedOver.load(mounted, me)
    with pytest.raises(StorageError, match="cannot read the operator's resume point"):
        HandedOver.load(tmp_path / "absent", me)


def test_a_store_without_sts_is_named_not_a_traceback(tmp_path):
    # SeaweedFS without its advanced IAM config has no STS: the operator's error says so.
    plain = SeaweedServer(tmp_path)
    plain.sts = False
    plain.start()
    try:
        with pytest.raises(StsError) as caught:
            assume_role(plain.endpoint, plain.access_key, plain.secret_key,
                        session_policy(BUCKET, "recordings/a/b/c/", False), secure=False,
                        duration=900, session_name="lucid-a")
    finally:
        plain.stop()
    assert caught.value.unsupported, caught.value
    assert str(caught.value).startswith("STS AssumeRole failed ("), caught.value
    assert plain.secret_key not in str(caught.value)


def test_wrong_long_lived_key_is_refused_by_sts(s3):
    with pytest.raises(StsError) as caught:
        assume_role(s3.endpoint, s3.access_key, "not-the-secret-key",
                    session_policy(BUCKET, "recordings/a/b/c/", False), secure=False,
                    duration=900, session_name="lucid-a",
                    role_arn=STS_ROLE_ARN if s3.kind == "seaweedfs" else None)
    assert not caught.value.unsupported, caught.value
    assert "not-the-secret-key" not in str(caught.value)
