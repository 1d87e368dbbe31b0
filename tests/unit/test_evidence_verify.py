"""Format 2 recordings against an attacker who can write the bucket (pure, no store).

The attacker holds the recipient's public key and the storage keys, so they can seal
chunks and write manifests of their own; they hold neither the recorder run's signing key
nor the operator's. The same attacks run against the real MinIO in tests/stack.
"""

import base64
import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.api import Seal
from lucid_common.evidence import new_operator_key, sign_seal
from lucid_recorder.sealing import (
    Codec,
    ProblemCode,
    Sealer,
    SessionIdentity,
    build_manifest,
    compress,
    fingerprint,
    verify,
)
from lucid_recorder.sealing.container import ChunkHeader
from lucid_recorder.sealing.manifest import Manifest
from lucid_recorder.sealing.verify import Trust, _ranges

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SESSION = SessionIdentity(namespace="team-a", name="db", uid="0f6a4c1e-2d3b-4a5c-8e9f-00112233")
SECOND = 10**9


@dataclasses.dataclass
class Rec:
    chunks: dict[int, bytes]
    manifest: Manifest
    sealers: list[Sealer]


def record(recipient, session=SESSION, n=6, *, epochs=(0,), start_seq=0, prev=bytes(32),
           previous: Rec | None = None) -> Rec:
    """What a recorder leaves: format 2 chunks of one run per epoch, a signed manifest."""
    chunks = dict(previous.chunks) if previous else {}
    infos = list(previous.manifest.chunks) if previous else []
    infos = [c.info() for c in infos]
    sealers = list(previous.sealers) if previous else []
    keys = [s.key_record for s in sealers]
    seq, per = start_seq, n // len(epochs)
    for epoch in epochs:
        sealer = Sealer(recipient.public_key(), session.uid, epoch=epoch, next_seq=seq,
                        prev_sha256=prev, namespace=session.namespace, name=session.name)
        sealers.append(sealer)
        keys.append(sealer.key_record)
        for _ in range(per):
            chunk = sealer.seal(compress(b"screen %d " % seq * 200, Codec.ZSTD, 3),
                                seq * 10 * SECOND, seq * 10 * SECOND + 9 * SECOND)
            chunks[seq] = chunk.data
            infos.append(chunk.info)
            seq += 1
        prev = sealer.prev_sha256
    manifest = build_manifest(session, fingerprint(recipient.public_key()), infos, keys,
                              started_at=T0, now=T0, complete=True, signer=sealers[-1].signer,
                              epoch=sealers[-1].epoch)
    return Rec(chunks, manifest, sealers)


def operator_seal(operator, rec: Rec, session=SESSION, *, counter=2, final=True,
                  chunks=None) -> Seal:
    count = len(rec.chunks) if chunks is None else chunks
    head = rec.manifest.chunks[count - 1].sha256 if count else None
    return sign_seal(Seal(
        session={"namespace": session.namespace, "name": session.name, "uid": session.uid},
        counter=counter, state="Completed" if final else "Recording", final=final,
        recorder_finalized=final,
        signing_keys=[{"epoch": s.epoch,
                       "publicKey": base64.b64encode(s.signer.public_raw).decode()}
                      for s in rec.sealers],
        chunks=count, chain_head=head, sealed_at="2026-01-01T00:10:00Z"), operator)


@pytest.fixture(scope="module")
def recipient():
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def operator():
    return new_operator_key()


@pytest.fixture(scope="module")
def real(recipient):
    return record(recipient, epochs=(0, 1))


def codes(report):
    return {p.code for p in report.problems}


def test_a_sealed_recording_verifies_and_is_countersigned(recipient, operator, real):
    trust = Trust(operator.public_key(), [("seals/00000002.json", operator_seal(operator, real))])
    report = verify(real.manifest, real.chunks, recipient, session=SESSION, trust=trust)
    assert report.ok and report.anchored, report.lines()
    assert report.formats == {2}
    assert [e.countersigned for e in report.epochs.values()] == [True, True]
    assert "countersigned by the operator" in report.verdict()


def test_copied_under_another_name_is_foreign(recipient, real):
    # Same UID, another namespace/name: what the old format accepted.
    elsewhere = SessionIdentity(namespace="team-b", name="db", uid=SESSION.uid)
    report = verify(real.manifest, real.chunks, recipient, session=elsewhere)
    assert ProblemCode.FOREIGN_SESSION in codes(report), report.lines()
    assert ProblemCode.MANIFEST_SESSION in codes(report)
    first = next(p for p in report.problems if p.code is ProblemCode.FOREIGN_SESSION)
    assert f"of session team-a/db/{SESSION.uid}, not of team-b/db/{SESSION.uid}" in first.message


def test_renamed_header_fields_do_not_open(recipient, real):
    # Rewriting the namespace in a header breaks the signature (and the key wrap).
    header = ChunkHeader.decode(real.chunks[0])
    forged = bytearray(real.chunks[0])
    offset = header.header_len - len(header.name) - len(header.namespace)
    forged[offset:offset + 6] = b"team-b"
    report = verify(real.manifest, {**real.chunks, 0: bytes(forged)}, recipient, session=SESSION)
    assert ProblemCode.BAD_SIGNATURE in codes(report), report.lines()


def test_cut_tail_with_a_rebuilt_final_manifest(recipient, operator, real):
    cut = {seq: data for seq, data in real.chunks.items() if seq < 4}
    # Rebuilt from the chunks' plaintext headers, signed by nobody (or by the attacker).
    rebuilt = build_manifest(SESSION, fingerprint(recipient.public_key()),
                             [c.info() for c in real.manifest.chunks[:4]],
                             [s.key_record for s in real.sealers], started_at=T0, now=T0,
                             complete=True, signer=Sealer(recipient.public_key(), SESSION.uid,
                                                          namespace="x", name="y").signer,
                             epoch=1)
    report = verify(rebuilt, cut, recipient, session=SESSION)
    assert ProblemCode.MANIFEST_FORGED in codes(report), report.lines()
    trust = Trust(operator.public_key(), [("seals/00000002.json", operator_seal(operator, real))])
    report = verify(rebuilt, cut, recipient, session=SESSION, trust=trust)
    cutline = next(p for p in report.problems if p.code is ProblemCode.TAIL_CUT)
    assert "covers 6 chunks, but the bucket holds authentic chunks up to 3: the tail was cut" \
        in cutline.message


def test_forged_new_epoch_appended_is_not_countersigned(recipient, operator, real):
    forged = record(recipient, n=1, epochs=(2,), start_seq=6,
                    prev=real.sealers[-1].prev_sha256, previous=real)
    seal = operator_seal(operator, real)
    report = verify(forged.manifest, forged.chunks, recipient, session=SESSION,
                    trust=Trust(operator.public_key(), [("seals/00000002.json", seal)]))
    assert {ProblemCode.UNCOUNTERSIGNED, ProblemCode.UNEXPECTED} <= codes(report), report.lines()
    line = next(p for p in report.problems if p.code is ProblemCode.UNCOUNTERSIGNED)
    assert line.chunk == 6 and "key epoch 2" in line.message
    # Without the operator's key only the declared gap shows: that is the old weakness.
    alone = verify(forged.manifest, forged.chunks, recipient, session=SESSION)
    assert alone.ok and "give --operator-key" in alone.verdict()


def test_whole_recording_fabricated_from_epoch_zero(recipient, operator, real):
    fake = record(recipient, epochs=(0, 1))
    seal = operator_seal(operator, real)
    report = verify(fake.manifest, fake.chunks, recipient, session=SESSION,
                    trust=Trust(operator.public_key(), [("seals/00000002.json", seal)]))
    assert {ProblemCode.UNCOUNTERSIGNED, ProblemCode.TAIL_REPLACED} <= codes(report)
    # And with no seal at all (deleted, or never copied): nothing vouches for it.
    report = verify(fake.manifest, fake.chunks, recipient, session=SESSION,
                    trust=Trust(operator.public_key(), []))
    assert ProblemCode.NO_SEAL in codes(report)


def test_forged_and_rolled_back_seals(recipient, operator, real):
    final = operator_seal(operator, real, counter=5)
    early = operator_seal(operator, real, counter=2, final=False, chunks=3)
    mallory = new_operator_key()
    fake = operator_seal(mallory, real, counter=9)
    trust = Trust(operator.public_key(), [("seals/00000002.json", early),
                                          ("seals/00000009.json", fake)], anchor=final)
    cut = {seq: data for seq, data in real.chunks.items() if seq < 3}
    report = verify(None, cut, recipient, session=SESSION, trust=trust)
    found = codes(report)
    assert {ProblemCode.SEAL_FORGED, ProblemCode.ROLLBACK, ProblemCode.TAIL_CUT} <= found, \
        report.lines()
    rollback = next(p for p in report.problems if p.code is ProblemCode.ROLLBACK)
    assert rollback.message.startswith("the anchor is seal #5 (Completed, 6 chunks), but the "
                                       "bucket holds seal #2 at most")


def test_missing_chunks_are_ranges_bounded_by_the_listing(recipient, real):
    # An object claiming a huge sequence number costs one range, not a loop over it.
    chunks = {**real.chunks, 10**19: real.chunks[0]}
    report = verify(None, chunks, recipient, session=SESSION)
    missing = [p for p in report.problems if p.code is ProblemCode.MISSING]
    assert [p.message for p in missing] == [
        f"chunks 6..{10**19 - 1} missing ({10**19 - 6} chunks)"]
    assert list(_ranges(0, [0, 1, 5, 9], 12)) == [(2, 4), (6, 8), (10, 11)]


def test_manifest_claiming_a_billion_chunks(recipient, real):
    data = real.manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["totals"]["chunks"] = 10**9
    bogus = Manifest.model_validate(data)
    report = verify(bogus, real.chunks, recipient, session=SESSION)
    assert report.problems[0].message == "manifest claims 1000000000 chunks but lists 6: edited"
    assert ProblemCode.MANIFEST_FORGED in codes(report)  # and its signature no longer holds


def test_format_1_recordings_still_verify(recipient):
    sealer = Sealer(recipient.public_key(), SESSION.uid)
    chunk = sealer.seal(compress(b"old", Codec.NONE), 0, 1)
    manifest = build_manifest(SESSION, fingerprint(recipient.public_key()), [chunk.info],
                              [sealer.key_record], started_at=T0, now=T0, complete=True)
    assert manifest.format == "lucid.manifest/v1"
    report = verify(Manifest.from_json(manifest.to_json()), {0: chunk.data}, recipient,
                    session=SESSION)
    assert report.ok and report.formats == {1}, report.lines()


def test_signed_manifest_round_trips(real):
    again = Manifest.from_json(real.manifest.to_json())
    assert again.signed_by(real.sealers[-1].signer.public_raw)
    assert not again.signed_by(real.sealers[0].signer.public_raw)


def test_manifest_re_signed_with_a_run_key_of_the_attackers(recipient, real):
    # Cut tail, and a final manifest whose key list names the attacker's run key for the
    # last epoch, signed with it: the chunks still name the real run key.
    mallory = Sealer(recipient.public_key(), SESSION.uid, epoch=1, namespace=SESSION.namespace,
                     name=SESSION.name)
    records = [real.sealers[0].key_record,
               dataclasses.replace(real.sealers[1].key_record, signer=mallory.signer.public_raw)]
    forged = build_manifest(SESSION, fingerprint(recipient.public_key()),
                            [c.info() for c in real.manifest.chunks[:4]], records,
                            started_at=T0, now=T0, complete=True, signer=mallory.signer, epoch=1)
    cut = {seq: data for seq, data in real.chunks.items() if seq < 4}
    report = verify(forged, cut, recipient, session=SESSION)
    conflict = next(p for p in report.problems if p.code is ProblemCode.KEY_CONFLICT)
    assert conflict.message == ("chunk 3 is signed by another run key for epoch 1 than the "
                                "manifest names: one of them was forged"), report.lines()
