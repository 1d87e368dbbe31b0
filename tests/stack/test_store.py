"""Sealed chunks through the spool into a real MinIO and a real SeaweedFS, and back out
through verify."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import Codec, GapReason, ProblemCode, SessionIdentity, compress
from lucid_recorder.sealing import verify as verify_session
from lucid_recorder.sealing.cli import ENV_ACCESS_KEY, ENV_SECRET_KEY, main
from lucid_recorder.sealing.keys import keygen, read_private_key, read_public_key
from lucid_recorder.storage import (
    BucketMissingError,
    ObjectStore,
    RetryPolicy,
    SessionLayout,
    Spool,
    StorageAuthError,
    make_client,
    publish_manifest,
    resume,
    upload_pending,
)
from tests.stack import s3servers

pytestmark = pytest.mark.stack

FAST = RetryPolicy(initial_delay=0.2, max_delay=1.0)


@pytest.fixture(scope="module", params=s3servers.KINDS)
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from s3servers.running(request, tmp_path_factory)


@pytest.fixture(scope="module")
def recipient():
    return X25519PrivateKey.generate()


def new_session() -> SessionIdentity:
    return SessionIdentity(namespace="team", name=f"rec-{uuid.uuid4().hex[:6]}",
                           uid=str(uuid.uuid4()))


def store_for(s3: s3servers.S3Server, session: SessionIdentity, bucket: str = "recordings",
              access: str | None = None, secret: str | None = None) -> ObjectStore:
    client = make_client(s3.endpoint, access or s3.access_key, secret or s3.secret_key,
                         secure=False)
    return ObjectStore(client, bucket, SessionLayout("recordings", session))


def frame(seq: int) -> bytes:
    return (f"frame {seq} ".encode() * 4000) + os.urandom(256)


def test_chunks_and_manifest_round_trip(s3, recipient, tmp_path):
    session = new_session()
    store = store_for(s3, session)
    store.ensure_bucket(create=True)
    spool = Spool(tmp_path / "spool", 64 << 20, session)
    sealer = resume(spool, store, recipient.public_key())
    for seq in range(5):
        spool.seal_into(sealer, compress(frame(seq), Codec.ZSTD, 3), seq * 10, seq * 10 + 9)
    publish_manifest(spool, store, recipient.public_key(), FAST,
                     complete=False, sealer=sealer)
    result = upload_pending(spool, store, FAST)
    assert (result.uploaded, result.remaining, spool.pending()) == (5, 0, [])
    manifest = publish_manifest(spool, store, recipient.public_key(), FAST,
                     complete=True, sealer=sealer)
    assert manifest.complete and manifest.totals.chunks == 5

    stored = store.get_manifest()
    assert stored == manifest
    report = verify_session(stored, store.chunks(), recipient)
    assert report.ok and report.complete, report.lines()
    stat = s3.client().stat_object("recordings", store.layout.chunk_key(3))
    assert stat.content_type == "application/vnd.lucid.chunk"
    assert stat.metadata["x-amz-meta-lucid-seq"] == "3"
    assert stat.metadata["x-amz-meta-lucid-sha256"] == manifest.chunks[3].sha256
    assert int(stat.metadata["x-amz-meta-lucid-plaintext-bytes"]) == len(frame(3))


def test_store_outage_loses_nothing(s3, recipient, tmp_path):
    session = new_session()
    store = store_for(s3, session)
    store.ensure_bucket(create=True)
    spool = Spool(tmp_path / "spool", 256 << 20, session)
    sealer = resume(spool, store, recipient.public_key())
    recording_done = threading.Event()
    drained = threading.Event()
    retries: list[str] = []
    errors: list[BaseException] = []

    def record() -> None:
        for seq in range(40):
            spool.seal_into(sealer, compress(frame(seq), Codec.ZSTD, 3), seq, seq + 1)
            time.sleep(0.2)
        recording_done.set()

    def drain() -> None:
        try:
            while True:
                done = recording_done.is_set()
                upload_pending(spool, store, FAST,
                               on_retry=lambda n, e, d: retries.append(str(e)))
                if done:
                    drained.set()
                    return
                time.sleep(0.1)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            raise

    threads = [threading.Thread(target=record), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    s3.stop()
    time.sleep(5.0)
    during_outage = len(spool.pending())
    s3.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert drained.is_set()
    assert during_outage > 5, "chunks should have piled up in the spool during the outage"
    # MinIO goes away at once; SeaweedFS's gateway answers InternalError while its filer
    # shuts down first. Both are retried, and the store is unreachable in between.
    assert retries and any("unreachable" in r for r in retries), retries[:3]
    assert all("unreachable" in r or "InternalError" in r for r in retries), retries
    publish_manifest(spool, store, recipient.public_key(), FAST,
                     complete=True, sealer=sealer)
    report = verify_session(store.get_manifest(), store.chunks(), recipient)
    assert report.ok, report.lines()
    assert report.chunks_authentic == 40


def test_restart_on_same_spool_drains_first_and_declares_the_gap(s3, recipient, tmp_path):
    session = new_session()
    store = store_for(s3, session)
    store.ensure_bucket(create=True)
    spool = Spool(tmp_path / "spool", 64 << 20, session)
    sealer = resume(spool, store, recipient.public_key())
    for seq in range(3):
        spool.seal_into(sealer, compress(frame(seq), Codec.ZSTD, 3), seq * 10, seq * 10 + 5)
    upload_pending(spool, store, FAST)
    spool.seal_into(sealer, compress(frame(3), Codec.ZSTD, 3), 30, 35)  # never uploaded
    # SIGKILL: the in-flight span 35..50 is lost, the sealed chunk 3 is not.
    del sealer, spool
    spool = Spool(tmp_path / "spool", 64 << 20, session)
    assert [p.seq for p in spool.pending()] == [3]
    sealer = resume(spool, store, recipient.public_key())
    assert (sealer.epoch, sealer.next_seq) == (1, 4)
    upload_pending(spool, store, FAST)
    spool.seal_into(sealer, compress(frame(4), Codec.ZSTD, 3), 50, 55)
    upload_pending(spool, store, FAST)
    publish_manifest(spool, store, recipient.public_key(), FAST,
                     complete=True, sealer=sealer)
    report = verify_session(store.get_manifest(), store.chunks(), recipient)
    assert report.ok, report.lines()
    gap, = report.gaps
    assert (gap.reason, gap.after_seq, gap.start_ns, gap.end_ns) == (
        GapReason.RECORDER_RESTART, 3, 35, 50)


def test_node_loss_continues_after_the_stored_chunks(s3, recipient, tmp_path):
    session = new_session()
    store = store_for(s3, session)
    store.ensure_bucket(create=True)
    first = Spool(tmp_path / "node-a", 64 << 20, session)
    sealer = resume(first, store, recipient.public_key())
    for seq in range(3):
        first.seal_into(sealer, compress(frame(seq), Codec.ZSTD, 3), seq * 10, seq * 10 + 5)
    upload_pending(first, store, FAST)
    publish_manifest(first, store, recipient.public_key(), FAST,
                     complete=False, sealer=sealer)
    first.seal_into(sealer, compress(frame(3), Codec.ZSTD, 3), 30, 35)  # lost with the node

    second = Spool(tmp_path / "node-b", 64 << 20, session)
    sealer = resume(second, store, recipient.public_key())
    assert (sealer.epoch, sealer.next_seq) == (1, 3)
    second.seal_into(sealer, compress(frame(9), Codec.ZSTD, 3), 90, 95)
    upload_pending(second, store, FAST)
    manifest = publish_manifest(second, store, recipient.public_key(), FAST,
                     complete=True, sealer=sealer)
    assert manifest.started_at == first.state.started_at
    report = verify_session(store.get_manifest(), store.chunks(), recipient)
    assert report.ok, report.lines()
    assert [(g.after_seq, g.start_ns, g.end_ns) for g in report.gaps] == [(2, 25, 90)]


def test_wrong_credentials(s3):
    for access, secret in (("no-such-key", "whatever-secret"), (s3.access_key, "wrong-secret")):
        store = store_for(s3, new_session(), access=access, secret=secret)
        with pytest.raises(StorageAuthError) as err:
            store.ensure_bucket(create=True)
        assert "wrong-secret" not in str(err.value) and "whatever-secret" not in str(err.value)


def test_missing_bucket(s3):
    store = store_for(s3, new_session(), bucket=f"absent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(BucketMissingError, match="createBucket is false"):
        store.ensure_bucket(create=False)
    store.ensure_bucket(create=True)
    store.ensure_bucket(create=False)


def test_missing_bucket_without_create_permission(s3):
    s3.add_user("recorder", "recorder-secret-1",
                ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"])
    store = store_for(s3, new_session(), bucket=f"absent-{uuid.uuid4().hex[:8]}",
                      access="recorder", secret="recorder-secret-1")
    with pytest.raises(BucketMissingError, match="may not create it"):
        store.ensure_bucket(create=True)


def test_cli_verify_and_decrypt_from_the_store(s3, tmp_path, monkeypatch, capsys):
    files = keygen(tmp_path / "keys")
    session = new_session()
    store = store_for(s3, session)
    store.ensure_bucket(create=True)
    spool = Spool(tmp_path / "spool", 64 << 20, session)
    public = read_public_key(files.public)
    sealer = resume(spool, store, public)
    for seq in range(3):
        spool.seal_into(sealer, compress(frame(seq), Codec.ZSTD, 3), seq, seq + 1)
    upload_pending(spool, store, FAST)
    publish_manifest(spool, store, public, FAST,
                     complete=True, sealer=sealer)
    monkeypatch.setenv(ENV_ACCESS_KEY, s3.access_key)
    monkeypatch.setenv(ENV_SECRET_KEY, s3.secret_key)
    source = ["--endpoint", s3.endpoint, "--no-tls", "--bucket", "recordings",
              "--session", f"{session.namespace}/{session.name}",
              "--private-key", str(files.private)]
    assert main(["verify", *source]) == 0
    assert "OK; complete; 3/3 chunks authentic" in capsys.readouterr().out
    assert main(["decrypt", *source, "--out-dir", str(tmp_path / "plain")]) == 0
    assert sorted(p.name for p in (tmp_path / "plain").glob("*.seg")) == [
        "00000000.seg", "00000001.seg", "00000002.seg"]
    assert (tmp_path / "plain" / "00000001.seg").read_bytes()[:20] == frame(1)[:20]

    s3.client().remove_object("recordings", store.layout.chunk_key(1))
    assert main(["verify", *source]) == 1
    assert "problem [chunk 1] missing: chunk 1 missing" in capsys.readouterr().out
    report = verify_session(None, store.chunks(), read_private_key(files.private),
                            session_uid=session.uid)
    assert set(report.codes()) == {ProblemCode.INCOMPLETE, ProblemCode.MISSING}
