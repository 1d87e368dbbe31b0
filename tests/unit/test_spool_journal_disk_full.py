"""A full disk while the spool journals a chunk: no torn journal line, no unjournaled chunk.

The chunk file can fit while its journal line does not (a full tmpfs page
boundary, as the e2e fault test hits). Before the fix the OSError escaped as a
crash, and a partly written line was glued onto the next record, so the
restarted recorder found its journal corrupt.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import Codec, SessionIdentity, compress, verify
from lucid_recorder.storage import Spool, SpoolDiskFull, manifest_of, resume
from lucid_recorder.storage.journal import Journal

SESSION = SessionIdentity(namespace="team", name="rec", uid="5a1d2c3e-0000-4a5c-8e9f-0011223344")
PAYLOAD = compress(os.urandom(2000), Codec.NONE)


def _short_write_then_full(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """The next os.write takes half its bytes, the one after fails with ENOSPC."""
    real_write = os.write
    calls = {"n": 0}

    def write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    return lambda: calls["n"]


def test_a_torn_append_is_cut_off_and_the_next_one_is_clean(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.session(SESSION)
    before = journal.size()
    _short_write_then_full(monkeypatch)
    with pytest.raises(OSError) as full:
        journal.finalized()
    assert full.value.errno == errno.ENOSPC
    assert journal.size() == before  # the half line is gone
    journal.finalized()
    state = journal.load()  # would raise "corrupt record" on a glued line
    assert state.session == SESSION and state.finalized


def test_chunk_that_fits_but_its_journal_line_does_not(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    recipient = X25519PrivateKey.generate()
    spool = Spool(tmp_path / "spool", 1 << 20, SESSION)
    sealer = resume(spool, None, recipient.public_key())
    spool.seal_into(sealer, PAYLOAD, 0, 5)
    spool.seal_into(sealer, PAYLOAD, 10, 15)

    calls = _short_write_then_full(monkeypatch)
    with pytest.raises(SpoolDiskFull) as full:
        spool.seal_into(sealer, PAYLOAD, 20, 25)
    assert calls() == 2, "the journal append was not what failed"
    monkeypatch.undo()
    chunk = full.value.chunk
    assert chunk.seq == 2
    # Not journaled, so not spooled: no file a restart would pick up on its own.
    assert sorted(p.name for p in (tmp_path / "spool" / "chunks").iterdir()) == \
        ["00000000.lrec", "00000001.lrec"]
    assert [p.seq for p in spool.pending()] == [0, 1]
    assert 2 not in spool.state.chunks

    # Once there is room the very same sealed bytes go in, and the chain carries on.
    spool.put(chunk)
    spool.seal_into(sealer, PAYLOAD, 30, 35)
    reopened = Spool(tmp_path / "spool", 1 << 20, SESSION)  # what a restart would read
    state = reopened.state
    assert sorted(state.chunks) == [0, 1, 2, 3]
    chunks = {p.seq: p.path.read_bytes() for p in reopened.pending()}
    assert chunks[2] == chunk.data
    report = verify(manifest_of(state, recipient.public_key(), complete=True,
                                now=state.started_at, sealer=sealer), chunks, recipient)
    assert report.ok and report.complete, report.lines()
    assert report.chunks_authentic == 4
