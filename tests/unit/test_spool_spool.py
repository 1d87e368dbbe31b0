import hashlib
import json
import os
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import Codec, Sealer, SessionIdentity, compress, verify
from lucid_recorder.sealing.manifest import GapReason
from lucid_recorder.storage import (
    Spool,
    SpoolError,
    SpoolFull,
    SpoolMismatchError,
    SpoolPolicy,
    manifest_of,
    resume,
)
from lucid_recorder.storage import spool as spool_module

SESSION = SessionIdentity(namespace="team", name="rec", uid="0f6a4c1e-2d3b-4a5c-8e9f-0011223344")
PAYLOAD = compress(os.urandom(2000), Codec.NONE)  # ~2.2 KiB sealed


@pytest.fixture
def recipient():
    return X25519PrivateKey.generate()


def open_spool(tmp_path, max_bytes=1 << 20, **kw):
    # Byte-exact accounting unless a test asks for blocks: the sizes below are exact.
    kw.setdefault("block_size", 1)
    return Spool(tmp_path / "spool", max_bytes, SESSION, **kw)


def fill(spool, recipient, n, sealer=None):
    sealer = sealer or resume(spool, None, recipient.public_key())
    out = []
    for i in range(n):
        out.append(spool.seal_into(sealer, PAYLOAD, i * 10, i * 10 + 5))
    return sealer, out


def test_chunks_are_written_atomically_and_drain_in_order(tmp_path, recipient):
    spool = open_spool(tmp_path)
    _, chunks = fill(spool, recipient, 5)
    pending = spool.pending()
    assert [p.seq for p in pending] == [0, 1, 2, 3, 4]
    for p, chunk in zip(pending, chunks, strict=True):
        assert p.path.read_bytes() == chunk.data
        assert p.sha256 == hashlib.sha256(chunk.data).hexdigest()
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []
    # Acknowledge out of order: what remains is still listed lowest first.
    spool.acknowledge(2, chunks[2].info.sha256)
    spool.acknowledge(0, chunks[0].info.sha256)
    assert [p.seq for p in spool.pending()] == [1, 3, 4]


def test_acknowledge_checks_the_hash(tmp_path, recipient):
    spool = open_spool(tmp_path)
    _, chunks = fill(spool, recipient, 1)
    with pytest.raises(SpoolError, match="not removing it"):
        spool.acknowledge(0, "0" * 64)
    assert [p.seq for p in spool.pending()] == [0]
    spool.acknowledge(0, chunks[0].info.sha256)
    spool.acknowledge(0, chunks[0].info.sha256)  # repeated ack is harmless
    assert spool.pending() == []


def test_restart_drains_leftovers_and_continues_in_a_new_epoch(tmp_path, recipient):
    spool = open_spool(tmp_path)
    first, chunks = fill(spool, recipient, 3)
    spool.acknowledge(0, chunks[0].info.sha256)
    # Crash leftovers: a half-written tmp file.
    (tmp_path / "spool" / "tmp" / "00000003.lrec.999.tmp").write_bytes(b"partial")

    again = open_spool(tmp_path)
    assert [p.seq for p in again.pending()] == [1, 2]
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []
    state = again.state
    assert (state.next_seq, state.next_epoch) == (3, 1)
    assert state.prev_sha256 == first.prev_sha256
    sealer = resume(again, None, recipient.public_key())
    assert (sealer.epoch, sealer.next_seq) == (1, 3)
    after = again.seal_into(sealer, PAYLOAD, 100, 105)
    assert after.seq == 3
    manifest = manifest_of(again.state, recipient.public_key(), complete=True,
                           now=state.started_at, sealer=sealer)
    assert [k.epoch for k in manifest.keys] == [0, 1]
    assert [c.seq for c in manifest.chunks] == [0, 1, 2, 3]
    everything = {c.seq: c.data for c in chunks} | {3: after.data}
    report = verify(manifest, everything, recipient)
    assert report.ok, report.lines()
    assert [g.reason for g in report.gaps] == [GapReason.RECORDER_RESTART]


def test_chunk_renamed_but_not_journaled_is_recovered(tmp_path, recipient):
    spool = open_spool(tmp_path)
    sealer, _ = fill(spool, recipient, 2)
    orphan = sealer.seal(PAYLOAD, 50, 55)  # sealed, renamed in, crash before journaling
    (tmp_path / "spool" / "chunks" / "00000002.lrec").write_bytes(orphan.data)
    again = open_spool(tmp_path)
    assert again.state.next_seq == 3
    assert again.info(2) == orphan.info


def test_torn_journal_tail_is_dropped(tmp_path, recipient):
    spool = open_spool(tmp_path)
    fill(spool, recipient, 2)
    journal = tmp_path / "spool" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"t":"chunk","chu')
    again = open_spool(tmp_path)
    assert again.state.next_seq == 2
    assert journal.read_bytes().endswith(b"\n")
    for line in journal.read_bytes().splitlines():
        json.loads(line)


def test_spool_of_another_session_is_refused(tmp_path, recipient):
    fill(open_spool(tmp_path), recipient, 1)
    other = SESSION.model_copy(update={"uid": "another"})
    with pytest.raises(SpoolMismatchError, match="belongs to session"):
        Spool(tmp_path / "spool", 1 << 20, other)


def test_disk_use_is_bounded(tmp_path, recipient):
    spool = open_spool(tmp_path, max_bytes=10_000)
    sealer = resume(spool, None, recipient.public_key())
    sealed = []
    with pytest.raises(SpoolFull) as full:
        for i in range(10):
            sealed.append(spool.seal_into(sealer, PAYLOAD, i, i))
    assert spool.used_bytes <= 10_000
    # The chunk, and room for its journal line (counted in bytes here: block size 1).
    assert full.value.limit == 10_000
    assert full.value.needed == sealer.sealed_size(2000) + spool_module._JOURNAL_LINE_BYTES
    # SpoolFull came before sealing: no sequence number was spent.
    assert sealer.next_seq == len(sealed) == len(spool.pending())
    spool.acknowledge(0, sealed[0].info.sha256)
    spool.check_room(sealer.sealed_size(2000))
    with pytest.raises(SpoolError, match="can never fit"):
        spool.check_room(20_000)


def test_disk_use_counts_whole_blocks(tmp_path, recipient):
    # ~2.2 KiB chunks take a 4 KiB block each on disk; counted in bytes, nine would
    # "fit" 20 KiB of bound while the disk (or a kubelet measuring it) held 36 KiB.
    spool = open_spool(tmp_path, max_bytes=20_480, block_size=4096)
    sealer = resume(spool, None, recipient.public_key())
    with pytest.raises(SpoolFull) as full:
        for i in range(10):
            spool.seal_into(sealer, PAYLOAD, i, i)
    assert full.value.needed == 4096
    assert spool.used_bytes == 4096 * (len(spool.pending()) + 1)  # the journal: one block
    assert spool.used_bytes <= 20_480
    assert len(spool.pending()) == 4


def test_block_size_defaults_to_the_filesystem_and_must_be_positive(tmp_path):
    assert Spool(tmp_path / "a", 1 << 20, SESSION).block_size == os.statvfs(tmp_path).f_frsize
    with pytest.raises(ValueError, match="block_size"):
        Spool(tmp_path / "b", 1 << 20, SESSION, block_size=0)


def test_block_policy_waits_for_uploads(tmp_path, recipient):
    spool = open_spool(tmp_path, policy=SpoolPolicy.BLOCK)
    sealer, chunks = fill(spool, recipient, 3)
    need = sealer.sealed_size(2000)
    # Full now by one byte; one upload frees a whole chunk.
    spool.max_bytes = spool.used_bytes + need + spool_module._JOURNAL_LINE_BYTES - 1
    assert not spool.wait_for_room(need, timeout=0.05)
    threading.Timer(0.1, spool.acknowledge, (0, chunks[0].info.sha256)).start()
    assert spool.wait_for_room(need, timeout=5)


def test_drop_oldest_unsealed_declares_the_gap(tmp_path, recipient):
    spool = open_spool(tmp_path, policy=SpoolPolicy.DROP_OLDEST_UNSEALED)
    sealer, _ = fill(spool, recipient, 2)
    # The pipeline found the spool full and discarded a compressed, unsealed chunk.
    spool.record_drop(20, 29, 2000)
    unflagged = Sealer(recipient.public_key(), SESSION.uid, epoch=9, next_seq=2,
                       prev_sha256=sealer.prev_sha256).seal(PAYLOAD, 30, 35)
    with pytest.raises(SpoolError, match="data-dropped flag"):
        spool.put(unflagged)
    flagged = spool.seal_into(sealer, PAYLOAD, 40, 45)
    assert flagged.info.dropped_before
    assert not spool.drop_pending
    assert spool.state.drops[0].plaintext_bytes == 2000
    manifest = manifest_of(spool.state, recipient.public_key(), complete=False,
                           now=spool.state.started_at, sealer=sealer)
    assert [g.reason for g in manifest.gaps] == [GapReason.DATA_DROPPED]


def test_sealed_chunks_are_never_replaced(tmp_path, recipient):
    spool = open_spool(tmp_path)
    _, chunks = fill(spool, recipient, 1)
    with pytest.raises(SpoolError, match="never replaced"):
        spool.put(chunks[0])


def test_sealing_needs_the_epoch_journaled_first(tmp_path, recipient):
    spool = open_spool(tmp_path)
    sealer = Sealer(recipient.public_key(), SESSION.uid)
    with pytest.raises(SpoolError, match="begin_epoch"):
        spool.seal_into(sealer, PAYLOAD, 0, 1)
    spool.begin_epoch(sealer.key_record)
    with pytest.raises(SpoolError, match="already used"):
        spool.begin_epoch(Sealer(recipient.public_key(), SESSION.uid).key_record)


def test_journal_holds_no_data_key(tmp_path, recipient):
    from lucid_recorder.sealing.keys import WrapSession, unwrap_data_key

    spool = open_spool(tmp_path)
    sealer, _ = fill(spool, recipient, 2)
    key = unwrap_data_key(sealer.key_record, recipient,
                          WrapSession(SESSION.uid, SESSION.namespace, SESSION.name))
    for path in (tmp_path / "spool").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert key not in blob and key.hex().encode() not in blob


def test_disk_full_keeps_the_sealed_chunk_for_a_later_write(tmp_path, recipient, monkeypatch):
    import errno

    from lucid_recorder.storage import SpoolDiskFull

    spool = open_spool(tmp_path)
    sealer, _ = fill(spool, recipient, 2)
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_once(fd):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_once)
    with pytest.raises(SpoolDiskFull) as full:
        spool.seal_into(sealer, PAYLOAD, 20, 25)
    assert full.value.chunk.seq == 2
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []  # no half-written file left
    assert [p.seq for p in spool.pending()] == [0, 1]
    # The same sealed bytes go in once there is room; the chain carries on after them.
    spool.put(full.value.chunk)
    spool.seal_into(sealer, PAYLOAD, 30, 35)
    assert [p.seq for p in spool.pending()] == [0, 1, 2, 3]
    state = spool.state
    chunks = {p.seq: p.path.read_bytes() for p in spool.pending()}
    report = verify(manifest_of(state, recipient.public_key(), complete=False,
                                now=state.started_at, sealer=sealer), chunks, recipient)
    assert not [p for p in report.problems if p.code.value != "incomplete"], report.lines()
