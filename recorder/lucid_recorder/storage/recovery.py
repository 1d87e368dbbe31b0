"""What earlier pods stored of a session, for a recorder whose spool is empty.

After node loss a new pod continues the sequence and hash chain after the last stored
chunk instead of overwriting chunk 0. It learns what is stored either from the store
itself (credentials that may read it) or from the operator's resume point
(lucid_common.resume: write-only scoped credentials), through the same three questions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lucid_common.layout import CHUNK_HEAD_BYTES
from lucid_common.resume import ResumePoint, ResumePointError, decode
from lucid_recorder.sealing.container import MAX_HEADER_BYTES, ChunkHeader
from lucid_recorder.sealing.errors import ChunkFormatError
from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.manifest import Manifest, SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo
from lucid_recorder.storage.errors import ObjectTooLargeError, StorageError
from lucid_recorder.storage.journal import SessionState

# The operator copies CHUNK_HEAD_BYTES of each unlisted chunk; every header must fit.
assert MAX_HEADER_BYTES <= CHUNK_HEAD_BYTES


class StoredSession(Protocol):
    def get_manifest(self) -> Manifest | None: ...

    def chunk_seqs(self) -> list[int]: ...

    def chunk_info(self, seq: int) -> tuple[ChunkInfo, KeyRecord]: ...


def recover_state(stored: StoredSession, session: SessionIdentity) -> SessionState:
    """The manifest's chunks and keys, completed by the header of every chunk it lacks."""
    try:
        manifest = stored.get_manifest()
    except ObjectTooLargeError:
        manifest = None  # not one the recorder wrote; the chunk headers say it all
    state = SessionState(session=session)
    if manifest is not None:
        state.started_at = manifest.started_at
        state.finalized = manifest.complete
        state.keys.update(manifest.key_records())
        state.chunks.update({c.seq: c.info() for c in manifest.chunks})
    for seq in stored.chunk_seqs():
        if seq in state.chunks and state.chunks[seq].epoch in state.keys:
            continue
        info, key = stored.chunk_info(seq)
        state.chunks[seq] = info
        state.keys.setdefault(key.epoch, key)
    return state


class HandedOver:
    """The operator's resume point (a mounted ConfigMap) as a StoredSession."""

    def __init__(self, point: ResumePoint) -> None:
        self.point = point
        self._unlisted = {c.seq: c for c in point.unlisted}

    @classmethod
    def load(cls, path: Path, session: SessionIdentity) -> HandedOver:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read the operator's resume point {path}: "
                               f"{exc.strerror or exc}") from exc
        try:
            return cls(decode(data, session.uid))
        except ResumePointError as exc:
            raise StorageError(f"{path}: {exc}") from exc

    def get_manifest(self) -> Manifest | None:
        data = self.point.manifest_bytes()
        return Manifest.from_json(data) if data is not None else None

    def chunk_seqs(self) -> list[int]:
        return sorted(self.point.chunk_seqs)

    def chunk_info(self, seq: int) -> tuple[ChunkInfo, KeyRecord]:
        chunk = self._unlisted.get(seq)
        if chunk is None:
            raise StorageError(f"the resume point lists chunk {seq} but does not describe it")
        try:
            header = ChunkHeader.decode(chunk.head_bytes())
        except (ChunkFormatError, ValueError) as exc:
            raise StorageError(f"stored chunk {seq} has no readable header in the resume "
                               f"point: {exc}") from exc
        if header.seq != seq:
            raise StorageError(f"stored chunk {seq} carries sequence number {header.seq} "
                               "in its header")
        info = ChunkInfo(header.seq, header.epoch, header.start_ns, header.end_ns,
                         header.plaintext_len, chunk.size, chunk.sha256, header.dropped_before)
        return info, header.key
