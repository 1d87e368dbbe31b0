"""The resume point (lucid_common.resume) and the recorder's reading of it
(lucid_recorder.storage.recovery.HandedOver), on real sealed chunks; the store side is
tests/stack/test_scoped_credentials.py and tests/e2e/test_scoped_credentials_e2e.py."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.layout import CHUNK_HEAD_BYTES, chunk_name, parse_chunk_name
from lucid_common.resume import (
    MAX_RESUME_BYTES,
    ResumePoint,
    ResumePointError,
    UnlistedChunk,
    decode,
    encode,
    manifest_chunk_seqs,
)
from lucid_recorder.sealing import Codec, Sealer, SessionIdentity, compress
from lucid_recorder.sealing.container import MAX_HEADER_BYTES
from lucid_recorder.sealing.keys import fingerprint
from lucid_recorder.sealing.manifest import build_manifest
from lucid_recorder.storage.errors import StorageError
from lucid_recorder.storage.recovery import HandedOver, recover_state

SESSION = SessionIdentity(namespace="team", name="s", uid="0f6b1c5e-0000-4000-8000-00000000000a")
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def _sealed(count: int) -> tuple[Sealer, list[bytes], X25519PrivateKey]:
    recipient = X25519PrivateKey.generate()
    sealer = Sealer(recipient.public_key(), SESSION.uid, epoch=0, namespace=SESSION.namespace,
                    name=SESSION.name)
    chunks = [sealer.seal(compress(b"frame %d" % i * 100, Codec.ZSTD, 3), i, i + 1)
              for i in range(count)]
    return sealer, [c.data for c in chunks], recipient


def _unlisted(seq: int, data: bytes) -> UnlistedChunk:
    return UnlistedChunk(seq=seq, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                         head=base64.b64encode(data[:CHUNK_HEAD_BYTES]).decode())


def test_every_chunk_header_fits_in_what_the_operator_copies():
    assert MAX_HEADER_BYTES <= CHUNK_HEAD_BYTES


def test_chunk_names_round_trip_and_refuse_other_spellings():
    assert chunk_name(7) == "00000007.lrec" and parse_chunk_name("00000007.lrec") == 7
    for odd in ("000000007.lrec", "7.lrec", "0000000७.lrec", "00000007.json", ""):
        assert parse_chunk_name(odd) is None, odd


def test_unlisted_chunks_are_read_from_their_headers_exactly_as_sealed():
    sealer, chunks, _ = _sealed(3)
    point = ResumePoint(session_uid=SESSION.uid, taken_at="2026-12-07T12:00:00Z",
                        chunk_seqs=[0, 1, 2],
                        unlisted=[_unlisted(i, c) for i, c in enumerate(chunks)])
    state = recover_state(HandedOver(decode(encode(point), SESSION.uid)), SESSION)
    assert (state.next_seq, state.next_epoch) == (3, 1)
    assert state.prev_sha256 == sealer.prev_sha256  # the chain continues from chunk 2
    assert state.chunks[1].sealed_bytes == len(chunks[1])
    assert state.keys[0] == sealer.key_record


def test_a_manifest_in_the_point_supplies_the_chunks_it_lists():
    sealer, chunks, recipient = _sealed(4)
    infos = [recover_state(HandedOver(ResumePoint(
        session_uid=SESSION.uid, taken_at="t", chunk_seqs=[i],
        unlisted=[_unlisted(i, c)])), SESSION).chunks[i] for i, c in enumerate(chunks)]
    manifest = build_manifest(SESSION, fingerprint(recipient.public_key()), infos[:2],
                              [sealer.key_record], started_at=NOW, now=NOW, complete=False)
    raw = manifest.to_json()
    assert manifest_chunk_seqs(raw) == {0, 1}
    point = ResumePoint(session_uid=SESSION.uid, taken_at="t",
                        manifest=base64.b64encode(raw).decode(), chunk_seqs=[0, 1, 2, 3],
                        unlisted=[_unlisted(2, chunks[2]), _unlisted(3, chunks[3])])
    state = recover_state(HandedOver(point), SESSION)
    assert sorted(state.chunks) == [0, 1, 2, 3] and state.started_at == NOW
    assert state.chunks == dict(enumerate(infos))


def test_unreadable_manifests_list_nothing_so_every_chunk_is_described():
    for raw in (b"", b"not json", b"[]", b'{"chunks": [{"no": 1}]}', b'{"chunks": 3}'):
        assert manifest_chunk_seqs(raw) == set(), raw


def test_a_chunk_listed_but_not_described_or_misnumbered_is_refused():
    _, chunks, _ = _sealed(2)
    missing = ResumePoint(session_uid=SESSION.uid, taken_at="t", chunk_seqs=[0, 1],
                          unlisted=[_unlisted(0, chunks[0])])
    with pytest.raises(StorageError, match="lists chunk 1 but does not describe it"):
        recover_state(HandedOver(missing), SESSION)
    moved = ResumePoint(session_uid=SESSION.uid, taken_at="t", chunk_seqs=[5],
                        unlisted=[_unlisted(5, chunks[1])])
    with pytest.raises(StorageError, match="chunk 5 carries sequence number 1"):
        recover_state(HandedOver(moved), SESSION)
    cut = ResumePoint(session_uid=SESSION.uid, taken_at="t", chunk_seqs=[0],
                      unlisted=[_unlisted(0, chunks[0][:20])])
    with pytest.raises(StorageError, match="chunk 0 has no readable header"):
        recover_state(HandedOver(cut), SESSION)


def test_decoding_refuses_another_session_and_damage(tmp_path: Path):
    point = ResumePoint(session_uid="other", taken_at="t")
    assert point.empty
    with pytest.raises(ResumePointError, match="is of session other, not"):
        decode(encode(point), SESSION.uid)
    for damaged in (b"", b"plain", gzip.compress(b"{}"), gzip.compress(b'{"format": "x"}')):
        with pytest.raises(ResumePointError, match="the resume point is unreadable"):
            decode(damaged, SESSION.uid)
    mounted = tmp_path / "resume.json.gz"
    mounted.write_bytes(b"plain")
    with pytest.raises(StorageError, match=f"{mounted}: the resume point is unreadable"):
        HandedOver.load(mounted, SESSION)


def test_a_point_larger_than_a_configmap_is_refused_with_its_size():
    # Incompressible, as a manifest never is: only size matters here.
    noise = base64.b64encode(random.Random(0).randbytes(MAX_RESUME_BYTES + 1)).decode()
    huge = ResumePoint(session_uid=SESSION.uid, taken_at="t", manifest=noise,
                       chunk_seqs=list(range(10)))
    with pytest.raises(ResumePointError,
                       match=rf"more than a ConfigMap holds \({MAX_RESUME_BYTES}\)"):
        encode(huge)
