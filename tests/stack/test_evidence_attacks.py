"""Attacks by someone who holds the storage keys and the recipient's public key, on a real MinIO.

Each test first makes a genuine recording the way the recorder does (spool, sealer, uploads,
signed manifests, two recorder runs) and seals it the way the operator does (its evidence
code, its key, its bucket writer). Then it attacks the bucket with the project's own sealing
code, as an attacker with those keys could, and runs the real `lucid-seal verify
--operator-key` as a process: each attack must exit non-zero with one precise line on
stderr, within bounded time and memory (both measured, printed, and kept for
docs/storage.md; no timed assertions).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from minio import Minio
from minio.retention import Retention

from lucid_common.api import Seal
from lucid_common.evidence import new_operator_key, public_pem, seal_json, sign_seal
from lucid_devstack.minio import make_bucket
from lucid_devstack.stack import venv_bin
from lucid_operator import evidence
from lucid_operator.seal_store import store_seal
from lucid_recorder.sealing import Codec, SessionIdentity, build_manifest, compress
from lucid_recorder.sealing.keys import fingerprint, keygen, read_public_key
from lucid_recorder.sealing.sealer import Sealer
from lucid_recorder.storage import (
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
BUCKET = "evidence"
PREFIX = "recordings"
CHUNKS_PER_RUN = 4
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
# Printed at the end of the module: time and peak memory of each verify.
MEASURED: dict[str, tuple[float, int]] = {}



@pytest.fixture(scope="module", params=s3servers.KINDS)
def minio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The store under attack: the real MinIO, then SeaweedFS (the attacks are the same)."""
    for server in s3servers.running(request, tmp_path_factory):
        client = make_client(server.endpoint, server.access_key, server.secret_key,
                             secure=False)
        make_bucket(client, BUCKET)
        yield server
    for name, (seconds, rss) in sorted(MEASURED.items()):
        print(f"verify {name} ({request.param}): {seconds:.2f}s, peak RSS {rss / 1024:.1f} MiB")
    MEASURED.clear()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("keys")
    files = keygen(root / "auditor")
    operator = new_operator_key()
    (root / "operator.pem").write_bytes(public_pem(operator.public_key()))
    return files, operator, root / "operator.pem"


@dataclass
class Genuine:
    """A recording as the recorder and the operator leave it."""

    session: SessionIdentity
    store: ObjectStore
    client: Minio
    bucket: str = BUCKET
    operator_seals: list[Seal] = field(default_factory=list)
    manifests: list[bytes] = field(default_factory=list)  # every manifest written, in order

    @property
    def anchor(self) -> Seal:
        return self.operator_seals[-1]  # what status.evidence.seal holds


def _chunk(seq: int) -> bytes:
    return f"screen {seq} ".encode() * 3000 + os.urandom(64)


def _seal_as_operator(operator, genuine: Genuine, spool: Spool, sealer: Sealer,
                      phase: str, finalized: bool) -> None:
    """What the operator does on the recorder's status report (lucid_operator.evidence)."""
    state = spool.state
    stored = max(state.chunks, default=-1) + 1
    import base64
    session = {
        "metadata": genuine.session.model_dump(),
        "status": {
            "phase": phase,
            "pipeline": {
                "state": "Finalized" if finalized else "Capturing",
                "signingKey": {"epoch": sealer.epoch,
                               "publicKey": base64.b64encode(sealer.signer.public_raw).decode()},
                "chainHead": {"chunks": stored, "sha256": state.chunks[stored - 1].sha256},
            },
            "evidence": ({"seal": genuine.operator_seals[-1].to_k8s()}
                         if genuine.operator_seals else {}),
        },
    }
    seal, _ = evidence.next_seal(session, T0 + dt.timedelta(minutes=len(genuine.operator_seals)))
    signed = sign_seal(seal, operator)
    store_seal(genuine.client, genuine.bucket, PREFIX, signed)
    genuine.operator_seals.append(signed)


def record(minio: s3servers.S3Server, keys, tmp_path: Path, name: str | None = None,
           bucket: str = BUCKET) -> Genuine:
    files, operator, _ = keys
    recipient = read_public_key(files.public)
    session = SessionIdentity(namespace="team-a", name=name or f"db-{uuid.uuid4().hex[:6]}",
                              uid=str(uuid.uuid4()))
    client = make_client(minio.endpoint, minio.access_key, minio.secret_key, secure=False)
    store = ObjectStore(client, bucket, SessionLayout(PREFIX, session))
    genuine = Genuine(session, store, client, bucket)
    seq = 0
    for run in range(2):  # a recorder restart in between: two runs, two run keys
        spool = Spool(tmp_path / f"spool-{session.name}-{run}", 64 << 20, session)
        sealer = resume(spool, store, recipient)
        for _ in range(CHUNKS_PER_RUN):
            spool.seal_into(sealer, compress(_chunk(seq), Codec.ZSTD, 3),
                            seq * 10**10, seq * 10**10 + 9 * 10**9)
            seq += 1
            upload_pending(spool, store, FAST)
        last = run == 1
        publish_manifest(spool, store, recipient, FAST, complete=last, sealer=sealer)
        genuine.manifests.append(store.get_manifest_bytes() or b"")
        _seal_as_operator(operator, genuine, spool, sealer,
                          "Completed" if last else "Recording", finalized=last)
    return genuine


def verify(minio: s3servers.S3Server, keys, session: str, measure: str, *extra: str,
           anchor: Seal | None = None, tmp: Path | None = None,
           bucket: str = BUCKET) -> subprocess.CompletedProcess[str]:
    files, _, operator_pem = keys
    argv = [str(venv_bin() / "lucid-seal"), "verify", "--endpoint", minio.endpoint,
            "--bucket", bucket, "--prefix", PREFIX, "--no-tls", "--session", session,
            "--private-key", str(files.private), "--operator-key", str(operator_pem), *extra]
    if anchor is not None:
        assert tmp is not None
        (tmp / "anchor.json").write_bytes(seal_json(anchor))
        argv += ["--anchor", str(tmp / "anchor.json")]
    env = {**os.environ, "LUCID_S3_ACCESS_KEY": minio.access_key,
           "LUCID_S3_SECRET_KEY": minio.secret_key}
    # Linux carries a process's peak RSS across exec, so a child forked from this (large)
    # pytest process would report pytest's peak: a small wrapper forks verify instead.
    rss_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"lucid-rss-{uuid.uuid4().hex}"
    began = time.monotonic()
    done = subprocess.run([str(venv_bin() / "python"), "-c", _MEASURE, str(rss_file), *argv],
                          capture_output=True, text=True, env=env, timeout=300)
    MEASURED[measure] = (time.monotonic() - began, int(rss_file.read_text()))
    rss_file.unlink()
    return done


_MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def failed_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def ref(genuine: Genuine) -> str:
    s = genuine.session
    return f"{s.namespace}/{s.name}/{s.uid}"


def _delete(client: Minio, keys: list[str]) -> None:
    for key in keys:
        client.remove_object(BUCKET, key)


def _attacker_sealer(genuine: Genuine, keys, *, epoch: int, next_seq: int,
                     prev: bytes) -> Sealer:
    """What the attacker can make: a sealer for the real recipient, with a run key of their
    own (the recorder's is in no file, only in its process's memory)."""
    files, _, _ = keys
    s = genuine.session
    return Sealer(read_public_key(files.public), s.uid, epoch=epoch, next_seq=next_seq,
                  prev_sha256=prev, namespace=s.namespace, name=s.name)


def _put_manifest(genuine: Genuine, data: bytes) -> None:
    genuine.client.put_object(BUCKET, genuine.store.layout.manifest_key, io.BytesIO(data),
                              len(data), content_type="application/json")


def _rebuild_manifest(genuine: Genuine, keys, sealer: Sealer, chunk_infos, key_records) -> None:
    files, _, _ = keys
    recipient: X25519PublicKey = read_public_key(files.public)
    manifest = build_manifest(genuine.session, fingerprint(recipient), chunk_infos, key_records,
                              started_at=T0, now=T0, complete=True, signer=sealer.signer,
                              epoch=sealer.epoch)
    _put_manifest(genuine, manifest.to_json())


def test_genuine_recording_verifies_with_the_operators_countersignature(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    report = tmp_path / "report.json"
    done = verify(minio, keys, ref(genuine), "genuine (8 chunks)", "--report", str(report),
                  anchor=genuine.anchor, tmp=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    audit = json.loads(report.read_text())
    assert audit["ok"] and audit["verdict"] == "OK, countersigned by the operator"
    assert [k["countersigned"] for k in audit["signingKeys"]] == [True, True]
    assert audit["operator"]["seal"]["counter"] == 2 and audit["operator"]["seal"]["final"]
    assert audit["retention"]["until"] is None  # this bucket has no object lock
    assert "retention:  none (no object lock retention on the objects)" in done.stdout
    assert "verdict:    OK, countersigned" in done.stdout


def test_audit_report_reads_the_retention_of_every_object(minio, keys, tmp_path):
    # The bucket and the retention are made here, by the test: setting retention is
    # issue 13 item 3; this checks that the report reads it, earliest date first.
    client = make_client(minio.endpoint, minio.access_key, minio.secret_key, secure=False)
    make_bucket(client, "evidence-locked", object_lock=True)
    locked = "evidence-locked"
    genuine = record(minio, keys, tmp_path, bucket=locked)
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    objects = list(client.list_objects(locked, prefix=genuine.store.layout.root,
                                       recursive=True))
    for i, obj in enumerate(objects):
        if i == 0:
            continue  # one object without retention: the report counts it
        name = obj.object_name or ""
        until = soon + dt.timedelta(days=1 if name.endswith("00000003.lrec") else 2)
        client.set_object_retention(locked, name, Retention("GOVERNANCE", until))
    report = tmp_path / "report.json"
    done = verify(minio, keys, ref(genuine), "retention", "--report", str(report),
                  bucket=locked)
    assert done.returncode == 0, done.stdout + done.stderr
    retention = json.loads(report.read_text())["retention"]
    expected = (soon + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert retention == {"mode": "GOVERNANCE", "until": expected,
                         "objects": len(objects), "without": 1}, retention
    assert f"retention:  GOVERNANCE until {expected}" in done.stdout


def test_fabricated_recording_for_the_same_session(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    layout = genuine.store.layout
    _delete(genuine.client, [layout.chunk_key(seq) for seq in range(8)])
    # A whole new recording from epoch 0: same namespace, name and UID, the same recipient,
    # a consistent chain and a signed manifest (signed by the attacker's run key).
    sealer = _attacker_sealer(genuine, keys, epoch=0, next_seq=0, prev=bytes(32))
    infos = []
    for seq in range(8):
        chunk = sealer.seal(compress(b"fabricated %d" % seq * 500, Codec.ZSTD, 3),
                            seq * 10**10, seq * 10**10 + 9 * 10**9)
        genuine.store.put_chunk(seq, chunk.data, chunk.info)
        infos.append(chunk.info)
    _rebuild_manifest(genuine, keys, sealer, infos, [sealer.key_record])
    line = failed_line(verify(minio, keys, ref(genuine), "fabricated"))
    assert "not-countersigned: 8 chunks of key epoch 0 (from chunk 0) are signed by run key" \
        in line and "which the operator never countersigned" in line, line
    # The attacker also deletes the operator's seals: nothing vouches for it at all.
    _delete(genuine.client, [layout.seal_key(s.counter) for s in genuine.operator_seals])
    line = failed_line(verify(minio, keys, ref(genuine), "fabricated, seals deleted"))
    assert "no-seal: no seal signed by the operator key" in line, line


def test_tail_replaced_from_chunk_k(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    store, k = genuine.store, 5
    kept = store.get_manifest()
    assert kept is not None
    _delete(genuine.client, [store.layout.chunk_key(seq) for seq in range(k, 8)])
    prev = bytes.fromhex(kept.chunks[k - 1].sha256)
    sealer = _attacker_sealer(genuine, keys, epoch=2, next_seq=k, prev=prev)
    infos = [c.info() for c in kept.chunks[:k]]
    for seq in range(k, 8):
        chunk = sealer.seal(compress(b"rewritten %d" % seq * 500, Codec.ZSTD, 3),
                            seq * 10**10, seq * 10**10 + 9 * 10**9)
        store.put_chunk(seq, chunk.data, chunk.info)
        infos.append(chunk.info)
    _rebuild_manifest(genuine, keys, sealer, infos,
                      [*kept.key_records().values(), sealer.key_record])
    done = verify(minio, keys, ref(genuine), "tail replaced")
    line = failed_line(done)
    assert "not-countersigned: 3 chunks of key epoch 2 (from chunk 5)" in line, line
    assert "tail-replaced: chunk 7 is not the chunk the operator sealed" in done.stdout


@pytest.mark.parametrize("manifest", ["rebuilt", "deleted"])
def test_tail_cut(minio, keys, tmp_path, manifest):
    genuine = record(minio, keys, tmp_path)
    store = genuine.store
    kept = store.get_manifest()
    assert kept is not None
    _delete(genuine.client, [store.layout.chunk_key(seq) for seq in range(6, 8)])
    if manifest == "deleted":
        _delete(genuine.client, [store.layout.manifest_key])
    else:
        # A final manifest rebuilt from the chunks' plaintext headers: needs no key but a
        # run key of the attacker's own to sign it.
        sealer = _attacker_sealer(genuine, keys, epoch=1, next_seq=6,
                                  prev=bytes.fromhex(kept.chunks[5].sha256))
        _rebuild_manifest(genuine, keys, sealer, [c.info() for c in kept.chunks[:6]],
                          kept.key_records().values())
    done = verify(minio, keys, ref(genuine), f"tail cut, manifest {manifest}")
    line = failed_line(done)
    assert ("tail-cut: the operator's seal #2 (Completed, final) covers 8 chunks, but the "
            "bucket holds authentic chunks up to 5: the tail was cut") in line, line
    if manifest == "rebuilt":
        assert "manifest-forged: manifest.json is not signed by the run of key epoch 1" \
            in done.stdout
    else:
        assert "incomplete: no manifest" in done.stdout


def test_rollback_to_an_earlier_manifest(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    store = genuine.store
    # The first run's own manifest (genuine, signed by that run), its chunks only, and the
    # first seal only: everything in the bucket is authentic, just older.
    _put_manifest(genuine, genuine.manifests[0])
    _delete(genuine.client, [store.layout.chunk_key(seq) for seq in range(4, 8)])
    _delete(genuine.client, [store.layout.seal_key(2)])
    done = verify(minio, keys, ref(genuine), "rollback", anchor=genuine.anchor, tmp=tmp_path)
    line = failed_line(done)
    assert ("rollback: the anchor is seal #2 (Completed, 8 chunks), but the bucket holds seal "
            "#1 at most (Recording, 4 chunks): its seals were deleted or rolled back") in line
    assert "tail-cut" in done.stdout
    # Without the anchor the bucket's own newest seal still says the session went on.
    line = failed_line(verify(minio, keys, ref(genuine), "rollback, no anchor"))
    assert "incomplete: manifest is not final" in line, line


def test_chunks_moved_between_sessions(minio, keys, tmp_path):
    victim, other = record(minio, keys, tmp_path), record(minio, keys, tmp_path)
    for seq in range(8):
        data = other.store.get_chunk(seq)
        assert data is not None
        victim.store.put_chunk(seq, data, None)
    done = verify(minio, keys, ref(victim), "moved chunks")
    line = failed_line(done)
    assert (f"foreign-session: chunk 0 is chunk 0 of session {ref(other)}, not of {ref(victim)}: "
            "moved or replayed from another session") in line, line


def test_recording_copied_under_another_name_with_the_same_uid(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    copy = SessionIdentity(namespace="team-b", name=genuine.session.name, uid=genuine.session.uid)
    layout = SessionLayout(PREFIX, copy)
    for obj in genuine.client.list_objects(BUCKET, prefix=genuine.store.layout.root,
                                           recursive=True):
        name = obj.object_name or ""
        data = genuine.client.get_object(BUCKET, name).read()
        target = layout.root + name.removeprefix(genuine.store.layout.root)
        genuine.client.put_object(BUCKET, target, io.BytesIO(data), len(data))
    done = verify(minio, keys, f"team-b/{copy.name}/{copy.uid}", "copied")
    line = failed_line(done)
    assert (f"seal-session: seal object seals/00000001.json is the operator's seal of session "
            f"{ref(genuine)}, not of team-b/{copy.name}/{copy.uid}: moved from another "
            "session") in line, line
    assert f"manifest-session: manifest belongs to session {ref(genuine)}, not team-b/" \
        in done.stdout
    assert "foreign-session: chunk 0 is chunk 0 of session" in done.stdout


def test_over_size_manifest(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    _put_manifest(genuine, b"{" + b" " * (50 * 1024 * 1024 - 2) + b"}")
    done = verify(minio, keys, ref(genuine), "50 MB manifest")
    line = failed_line(done)
    assert ("manifest-invalid: manifest " + genuine.store.layout.manifest_key
            + " is 52428800 bytes, more than the 16777216 bytes it may have: not read") in line
    assert "8/8 chunks authentic" in done.stdout  # the rest was still verified


def test_manifest_claiming_a_billion_chunks(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    manifest = json.loads(genuine.store.get_manifest_bytes() or b"")
    manifest["totals"]["chunks"] = 10**9
    _put_manifest(genuine, json.dumps(manifest).encode())
    line = failed_line(verify(minio, keys, ref(genuine), "manifest claiming 10^9 chunks"))
    assert "manifest-invalid: manifest claims 1000000000 chunks but lists 8: edited" in line


@pytest.mark.parametrize("name", ["99999999999999999999.lrec", "00000001000000000.lrec",
                                  "0000000\u0661.lrec"])
def test_hostile_chunk_names_are_bounded_and_named(minio, keys, tmp_path, name):
    genuine = record(minio, keys, tmp_path)
    store = genuine.store
    _put_manifest(genuine, genuine.manifests[0])  # complete: false, as the issue found it
    data = store.get_chunk(0) or b""
    genuine.client.put_object(BUCKET, store.layout.chunks_prefix + name, io.BytesIO(data),
                              len(data))
    done = verify(minio, keys, ref(genuine), f"object {name!r}")
    line = failed_line(done)
    assert f"stray-object: object chunks/{name} is not a chunk name Lucid writes" in line, line


def test_read_errors_are_one_line(minio, keys, tmp_path):
    genuine = record(minio, keys, tmp_path)
    files, _, operator_pem = keys
    env = {**os.environ, "LUCID_S3_ACCESS_KEY": minio.access_key, "LUCID_S3_SECRET_KEY": "wrong"}
    done = subprocess.run(
        [str(venv_bin() / "lucid-seal"), "verify", "--endpoint", minio.endpoint, "--bucket",
         BUCKET, "--prefix", PREFIX, "--no-tls", "--session", ref(genuine), "--private-key",
         str(files.private), "--operator-key", str(operator_pem)],
        capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "rejected the credentials" in done.stderr, done.stderr


def test_rewritten_and_hidden_chunks_of_a_locked_bucket_name_their_originals(
        minio, keys, tmp_path):
    """Under object lock a writer can only add versions: a chunk overwritten with other
    bytes, and one hidden by a delete marker, are both caught, and the report names the
    original versions still stored (the seals alone would only say the chain broke)."""
    client = make_client(minio.endpoint, minio.access_key, minio.secret_key, secure=False)
    locked = "evidence-versioned"
    if not client.bucket_exists(locked):
        make_bucket(client, locked, object_lock=True)
    genuine = record(minio, keys, tmp_path, bucket=locked)
    layout = genuine.store.layout
    original = client.stat_object(locked, layout.chunk_key(2)).version_id
    forged = b"not the recorder's chunk"
    client.put_object(locked, layout.chunk_key(2), io.BytesIO(forged), len(forged))
    client.remove_object(locked, layout.chunk_key(5))  # a delete marker, nothing destroyed
    done = verify(minio, keys, ref(genuine), "rewritten", "--json", bucket=locked)
    assert done.returncode == 1, done.stdout + done.stderr
    problems = json.loads(done.stdout)["problems"]
    rewritten = [p["message"] for p in problems if p["code"] == "rewritten"]
    assert len(rewritten) == 2, problems
    assert rewritten[0].startswith("chunks/00000002.lrec was rewritten: 2 versions with "
                                   f"different contents; the first is version {original}")
    assert rewritten[1].startswith("chunks/00000005.lrec is hidden by a delete marker; 1 "
                                   "earlier version(s) are still stored")
    # The genuine session in the same bucket has no such finding.
    clean = record(minio, keys, tmp_path, bucket=locked)
    assert verify(minio, keys, ref(clean), "versioned, clean", bucket=locked).returncode == 0
