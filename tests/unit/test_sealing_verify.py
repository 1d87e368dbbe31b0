import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import (
    ChunkHeader,
    Codec,
    GapReason,
    IntegrityError,
    Manifest,
    ProblemCode,
    Sealer,
    SessionIdentity,
    UnwrapError,
    build_manifest,
    compress,
    decrypt_segments,
    fingerprint,
    verify,
)
from lucid_recorder.sealing.container import seal
from lucid_recorder.sealing.keys import unwrap_data_key

UID = "0f6a4c1e-2d3b-4a5c-8e9f-001122334455"
OTHER_UID = "99999999-2d3b-4a5c-8e9f-001122334455"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SECOND = 1_000_000_000


def plaintext(seq):
    return f"segment {seq} ".encode() * 300


class Recording:
    """A session as a recorder would leave it: chunks by object seq, and a manifest."""

    def __init__(self, recipient, uid=UID, chunks=6, *, restart_after=None, drop_before=None):
        self.recipient = recipient
        self.uid = uid
        self.chunks = {}
        self.infos = []
        self.keys = []
        sealer = self._sealer(0)
        for seq in range(chunks):
            if restart_after is not None and seq == restart_after + 1:
                sealer = self._sealer(1, sealer)
            start = seq * 10 * SECOND + (5 * SECOND if seq == drop_before else 0)
            chunk = sealer.seal(compress(plaintext(seq), Codec.ZSTD, 3), start,
                                start + 8 * SECOND, dropped_before=seq == drop_before)
            self.chunks[seq] = chunk.data
            self.infos.append(chunk.info)

    def _sealer(self, epoch, previous=None):
        sealer = Sealer(self.recipient.public_key(), self.uid, epoch=epoch,
                        next_seq=previous.next_seq if previous else 0,
                        prev_sha256=previous.prev_sha256 if previous else bytes(32))
        self.keys.append(sealer.key_record)
        return sealer

    def manifest(self, complete=True, infos=None):
        return build_manifest(
            SessionIdentity(namespace="team", name="rec", uid=self.uid),
            fingerprint(self.recipient.public_key()), infos or self.infos, self.keys,
            started_at=T0, now=T0 + dt.timedelta(minutes=1), complete=complete)


@pytest.fixture(scope="module")
def recipient():
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def recording(recipient):
    return Recording(recipient)


def only(report, code):
    found = [p for p in report.problems if p.code == code]
    assert found, report.lines()
    assert {p.code for p in report.problems} == {code}, report.lines()
    return found


def test_clean_session_verifies_and_decrypts(recipient, recording):
    manifest = Manifest.from_json(recording.manifest().to_json())
    report = verify(manifest, recording.chunks, recipient)
    assert report.ok and report.complete, report.lines()
    assert report.chunks_authentic == report.chunks_expected == 6
    assert report.gaps == []
    segments = list(decrypt_segments(manifest, recording.chunks, recipient))
    assert [s.plaintext for s in segments] == [plaintext(i) for i in range(6)]
    assert [s.seq for s in segments] == list(range(6))
    assert not any(s.gap_before for s in segments)


def test_flipped_byte_is_an_authentication_failure_of_that_chunk(recipient, recording):
    chunks = dict(recording.chunks)
    tampered = bytearray(chunks[3])
    tampered[-20] ^= 0x01  # in the ciphertext
    chunks[3] = bytes(tampered)
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.AUTH_FAILED)
    assert problem.chunk == 3
    assert problem.message == "chunk 3 failed authentication: its bytes were modified"
    with pytest.raises(IntegrityError, match="chunk 3 failed authentication"):
        list(decrypt_segments(recording.manifest(), chunks, recipient))
    kept = list(decrypt_segments(recording.manifest(), chunks, recipient, skip_damaged=True))
    assert [s.seq for s in kept] == [0, 1, 2, 4, 5]
    assert kept[3].gap_before


@pytest.mark.parametrize("offset", [12, 30, 60, 100, 130, 170, 205])
def test_flipped_header_byte_is_caught(recipient, recording, offset):
    chunks = dict(recording.chunks)
    tampered = bytearray(chunks[2])
    tampered[offset] ^= 0x04
    chunks[2] = bytes(tampered)
    report = verify(recording.manifest(), chunks, recipient)
    assert not report.ok
    assert report.problems[0].chunk == 2, report.lines()
    assert report.problems[0].code in (ProblemCode.AUTH_FAILED, ProblemCode.TRUNCATED,
                                       ProblemCode.MALFORMED, ProblemCode.FOREIGN_SESSION)


def test_deleted_chunk_is_missing(recipient, recording):
    chunks = dict(recording.chunks)
    del chunks[4]
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.MISSING)
    assert (problem.chunk, problem.message) == (4, "chunk 4 missing")
    segments = list(decrypt_segments(recording.manifest(), chunks, recipient))
    assert [s.seq for s in segments] == [0, 1, 2, 3, 5] and segments[4].gap_before


def test_swapped_chunks_are_misplaced(recipient, recording):
    chunks = dict(recording.chunks)
    chunks[1], chunks[2] = chunks[2], chunks[1]
    report = verify(recording.manifest(), chunks, recipient)
    problems = only(report, ProblemCode.MISPLACED)
    assert [p.message for p in problems] == [
        "object 1 holds chunk 2: chunks were swapped or renamed",
        "object 2 holds chunk 1: chunks were swapped or renamed",
    ]
    with pytest.raises(IntegrityError, match="object 1 holds chunk 2"):
        list(decrypt_segments(recording.manifest(), chunks, recipient))


def _forge(recipient, original, prev_sha256):
    """A chunk sealed with the real data key (known to the key holder) but another history."""
    header = ChunkHeader.decode(original)
    data_key = unwrap_data_key(header.key, recipient, UID)
    payload = compress(b"substituted", Codec.NONE)
    forged = dataclasses.replace(header, codec=payload.codec, prev_sha256=prev_sha256,
                                 plaintext_len=payload.plaintext_len,
                                 ciphertext_len=len(payload.data) + 16)
    return seal(forged, payload.data, data_key)


def test_substituted_chunk_breaks_the_chain(recipient, recording):
    chunks = dict(recording.chunks)
    chunks[3] = _forge(recipient, chunks[3], b"\x11" * 32)
    report = verify(None, chunks, recipient, session_uid=UID)
    broken = [p for p in report.problems if p.code is ProblemCode.CHAIN_BROKEN]
    assert [(p.chunk, p.message) for p in broken] == [
        (3, "chunk 3 does not follow chunk 2 (previous-hash mismatch): a chunk was "
            "substituted or the chunks were reordered"),
        (4, "chunk 4 does not follow chunk 3 (previous-hash mismatch): a chunk was "
            "substituted or the chunks were reordered"),
    ]
    assert set(report.codes()) == {ProblemCode.INCOMPLETE, ProblemCode.CHAIN_BROKEN}
    with pytest.raises(IntegrityError, match="chunk 3 does not follow chunk 2"):
        list(decrypt_segments(None, chunks, recipient, session_uid=UID))


def test_chunk_zero_must_start_the_chain(recipient, recording):
    chunks = dict(recording.chunks)
    chunks[0] = _forge(recipient, chunks[0], b"\x22" * 32)
    report = verify(None, chunks, recipient, session_uid=UID)
    assert (0, ProblemCode.CHAIN_BROKEN) in [(p.chunk, p.code) for p in report.problems]


def test_truncated_session_without_manifest_is_incomplete(recipient, recording):
    chunks = {seq: data for seq, data in recording.chunks.items() if seq < 4}
    report = verify(None, chunks, recipient, session_uid=UID)
    problem, = only(report, ProblemCode.INCOMPLETE)
    assert "no manifest" in problem.message
    assert not report.complete


def test_intermediate_manifest_is_incomplete(recipient, recording):
    manifest = recording.manifest(complete=False, infos=recording.infos[:4])
    report = verify(manifest, recording.chunks, recipient)
    problem, = only(report, ProblemCode.INCOMPLETE)
    assert "complete: false" in problem.message and "lists 4 chunks" in problem.message


def test_tail_deleted_under_a_final_manifest_is_missing(recipient, recording):
    chunks = {seq: data for seq, data in recording.chunks.items() if seq < 4}
    report = verify(recording.manifest(), chunks, recipient)
    # One line per hole, however long: the work is bounded by the objects listed.
    assert [(p.chunk, p.code, p.message) for p in report.problems] == [
        (4, ProblemCode.MISSING, "chunks 4..5 missing (2 chunks)")]


def test_chunk_replayed_from_another_session(recipient, recording):
    other = Recording(recipient, uid=OTHER_UID)
    chunks = dict(recording.chunks)
    chunks[2] = other.chunks[2]
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.FOREIGN_SESSION)
    assert problem.chunk == 2
    assert f"of session {OTHER_UID}, not of {UID}: replayed from another session" in \
        problem.message


def test_chunk_from_another_session_with_its_uid_rewritten(recipient, recording):
    other = Recording(recipient, uid=OTHER_UID)
    forged = other.chunks[2].replace(OTHER_UID.encode(), UID.encode())
    chunks = dict(recording.chunks)
    chunks[2] = forged
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.AUTH_FAILED)
    assert problem.chunk == 2 and "data key does not open" in problem.message


def test_replayed_duplicate_chunk(recipient, recording):
    chunks = dict(recording.chunks)
    chunks[4] = chunks[1]
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.DUPLICATE)
    assert (problem.chunk, problem.message) == (4, "object 4 is a replayed copy of chunk 1")


def test_chunk_appended_after_finalization(recipient, recording):
    chunks = dict(recording.chunks)
    chunks[6] = chunks[5]
    report = verify(recording.manifest(), chunks, recipient)
    assert set(report.codes()) == {ProblemCode.UNEXPECTED, ProblemCode.DUPLICATE}


def test_forged_epoch_with_the_public_key(recipient, recording):
    # Anyone with the public key can seal; a chunk under a made-up key for an
    # existing epoch is caught by the key record the manifest and chunk 0 carry.
    forger = Sealer(recipient.public_key(), UID, epoch=0, next_seq=5,
                    prev_sha256=bytes.fromhex(recording.infos[4].sha256))
    chunks = dict(recording.chunks)
    chunks[5] = forger.seal(compress(b"fake", Codec.NONE), 50 * SECOND, 58 * SECOND).data
    report = verify(recording.manifest(), chunks, recipient)
    problem, = only(report, ProblemCode.KEY_CONFLICT)
    assert problem.chunk == 5 and "than the manifest" in problem.message


def test_manifest_that_disagrees_with_a_chunk(recipient, recording):
    manifest = recording.manifest()
    data = manifest.model_dump(by_alias=True)
    data["chunks"][2]["sha256"] = "0" * 64
    report = verify(Manifest.model_validate(data), recording.chunks, recipient)
    problem, = only(report, ProblemCode.MANIFEST_MISMATCH)
    assert problem.chunk == 2


def test_manifest_of_another_session(recipient, recording):
    other = Recording(recipient, uid=OTHER_UID, chunks=1)
    report = verify(other.manifest(), recording.chunks, recipient, session_uid=UID)
    assert ProblemCode.MANIFEST_SESSION in report.codes()


def test_wrong_private_key_fails_clearly(recording):
    wrong = X25519PrivateKey.generate()
    report = verify(recording.manifest(), recording.chunks, wrong)
    problem, = only(report, ProblemCode.WRONG_KEY)
    assert "private key given belongs to" in problem.message
    report = verify(None, recording.chunks, wrong, session_uid=UID)
    assert set(report.codes()) == {ProblemCode.INCOMPLETE, ProblemCode.WRONG_KEY}
    assert len(report.problems) == 2  # one wrong-key problem, not one per chunk
    with pytest.raises(UnwrapError, match="encrypted to recipient"):
        list(decrypt_segments(recording.manifest(), recording.chunks, wrong))
    with pytest.raises(UnwrapError, match="encrypted to recipient"):
        list(decrypt_segments(None, recording.chunks, wrong, session_uid=UID))


def test_recorder_restart_is_a_declared_gap_not_a_problem(recipient):
    rec = Recording(recipient, restart_after=2)
    report = verify(rec.manifest(), rec.chunks, recipient)
    assert report.ok, report.lines()
    gap, = report.gaps
    assert gap.reason is GapReason.RECORDER_RESTART
    assert (gap.after_seq, gap.before_seq) == (2, 3)
    assert (gap.start_ns, gap.end_ns) == (28 * SECOND, 30 * SECOND)
    assert "recorder restarted" in gap.describe()
    assert rec.manifest().gaps == report.gaps
    segments = list(decrypt_segments(rec.manifest(), rec.chunks, recipient))
    assert [s.gap_before for s in segments] == [False, False, False, True, False, False]


def test_dropped_data_is_a_declared_gap(recipient):
    rec = Recording(recipient, drop_before=4)
    report = verify(rec.manifest(), rec.chunks, recipient)
    assert report.ok, report.lines()
    gap, = report.gaps
    assert gap.reason is GapReason.DATA_DROPPED
    assert (gap.start_ns, gap.end_ns) == (38 * SECOND, 45 * SECOND)


def test_report_rendering(recipient, recording):
    chunks = dict(recording.chunks)
    del chunks[1]
    report = verify(recording.manifest(), chunks, recipient)
    lines = report.lines()
    assert lines[0].startswith(f"session {UID}: FAILED (1 problems); complete; 5/6 chunks")
    assert lines[1] == "problem [chunk 1] missing: chunk 1 missing"
    as_dict = report.to_dict()
    assert as_dict["ok"] is False
    assert as_dict["problems"] == [{"chunk": 1, "code": "missing", "message": "chunk 1 missing"}]


def test_verify_needs_a_uid_without_manifest(recipient, recording):
    with pytest.raises(ValueError, match="session UID"):
        verify(None, recording.chunks, recipient)
