"""The local spool: sealed chunks wait here until the object store has them.

Layout on the emptyDir volume (contract.SPOOL_DIR):

    journal.jsonl           append-only facts (journal.py)
    chunks/<seq:08d>.lrec   sealed chunks not yet acknowledged by the store
    tmp/                    writes in progress; emptied on open

A chunk is written to tmp/, fsynced, renamed into chunks/ and the directory
fsynced, and only then journaled, so after a crash every journaled chunk
exists and every chunk file is either complete or absent. It is deleted only
when the store acknowledged it with a matching checksum.

The byte limit counts chunk files and the journal. Only sealed chunks ever
live here, and they are never dropped: when the spool is full the caller
either waits (Block) or discards its oldest *unsealed* data and records the
drop (DropOldestUnsealed); the next sealed chunk then carries the
data-dropped flag, so the gap is declared in the authenticated stream.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lucid_recorder.sealing.compression import Compressed
from lucid_recorder.sealing.container import ChunkHeader
from lucid_recorder.sealing.errors import ChunkFormatError
from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo, SealedChunk, Sealer
from lucid_recorder.storage.errors import SpoolDiskFull, SpoolError, SpoolFull, SpoolMismatchError
from lucid_recorder.storage.journal import DropRecord, Journal, SessionState
from lucid_recorder.storage.layout import parse_chunk_name


class SpoolPolicy(StrEnum):
    """What the pipeline does when a sealed chunk does not fit."""

    # Apply back-pressure: stop sealing until uploads free space; report Degraded.
    BLOCK = "Block"
    # Discard the oldest compressed-but-unsealed chunk instead, and record the gap.
    DROP_OLDEST_UNSEALED = "DropOldestUnsealed"


@dataclass(frozen=True)
class PendingChunk:
    seq: int
    path: Path
    size: int
    sha256: str | None  # None if the file's header is unreadable (uploaded as-is)


# More than a chunk's journal line ever takes (a JSON object of its facts).
_JOURNAL_LINE_BYTES = 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunk_name(seq: int) -> str:
    return f"{seq:08d}.lrec"


class Spool:
    """Thread-safe: the seal stage writes while the store stage drains."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        session: SessionIdentity,
        policy: SpoolPolicy = SpoolPolicy.BLOCK,
        block_size: int | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("spool max_bytes must be positive")
        if block_size is not None and block_size <= 0:
            raise ValueError("spool block_size must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.policy = policy
        self.session = session
        self._chunks_dir = directory / "chunks"
        self._tmp_dir = directory / "tmp"
        self._lock = threading.Condition()
        self._drop_pending = False
        for d in (directory, self._chunks_dir, self._tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        # A disk (and a kubelet measuring an emptyDir) counts whole blocks: with many small
        # chunks, counting bytes alone let the disk fill before the bound pushed back.
        self.block_size = block_size or os.statvfs(directory).f_frsize or 4096
        for stale in self._tmp_dir.iterdir():
            # Never renamed, so never counted as spooled: the seq it held is
            # reused by the next epoch (new key, so no nonce is reused).
            stale.unlink()
        self._journal = Journal(directory / "journal.jsonl")
        self._state = self._recover()
        self._files: dict[int, int] = {
            seq: path.stat().st_size for seq, path in self._chunk_files().items()
        }

    # -- recovery ----------------------------------------------------------------

    def _chunk_files(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        for path in self._chunks_dir.iterdir():
            seq = parse_chunk_name(path.name)
            if seq is not None:
                found[seq] = path
        return found

    def _recover(self) -> SessionState:
        state = self._journal.load()
        if state.session is None:
            self._journal.session(self.session)
            state = self._journal.load()
        elif state.session.uid != self.session.uid:
            raise SpoolMismatchError(
                f"spool {self.directory} belongs to session {state.session.uid}, "
                f"not {self.session.uid}"
            )
        for seq, path in sorted(self._chunk_files().items()):
            if seq in state.chunks:
                continue
            # Renamed in but not journaled before a crash: its header says it all.
            data = path.read_bytes()
            try:
                header = ChunkHeader.decode(data)
            except ChunkFormatError:
                continue  # still pending and uploaded as-is; verify will name it
            if header.session_uid != self.session.uid:
                raise SpoolMismatchError(
                    f"spool chunk {path.name} belongs to session {header.session_uid}"
                )
            if header.epoch not in state.keys:
                self._journal.epoch(header.key)
                state.keys[header.epoch] = header.key
            info = ChunkInfo.of(header, data)
            self._journal.chunk(info)
            state.chunks[seq] = info
        return state

    # -- state ---------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """What a restarted recorder resumes from (next seq, chain head, next epoch)."""
        with self._lock:
            return SessionState(
                session=self._state.session, started_at=self._state.started_at,
                chunks=dict(self._state.chunks), keys=dict(self._state.keys),
                drops=list(self._state.drops), finalized=self._state.finalized,
            )

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used_locked()

    def _on_disk(self, nbytes: int) -> int:
        return -(-nbytes // self.block_size) * self.block_size

    def _used_locked(self) -> int:
        """Disk use in whole blocks: chunk files and the journal."""
        return (sum(self._on_disk(n) for n in self._files.values())
                + self._on_disk(self._journal.size()))

    @property
    def drop_pending(self) -> bool:
        return self._drop_pending

    # -- writing ---------------------------------------------------------------------

    def _check_room_locked(self, nbytes: int) -> None:
        # With its journal line: a chunk that fits only without it would wait forever.
        if self._on_disk(nbytes) + self._on_disk(_JOURNAL_LINE_BYTES) > self.max_bytes:
            raise SpoolError(
                f"a sealed chunk of {nbytes} bytes can never fit a spool of {self.max_bytes} "
                "bytes: raise the spool limit or lower chunking.maxBytes"
            )
        used = self._used_locked()
        # The chunk's journal line comes on top of it, and can take the journal into one
        # more block: without this the spool could pass its bound by a block.
        journal = self._journal.size()
        needed = (self._on_disk(nbytes) + self._on_disk(journal + _JOURNAL_LINE_BYTES)
                  - self._on_disk(journal))
        if used + needed > self.max_bytes:
            raise SpoolFull(needed, used, self.max_bytes)

    def check_room(self, nbytes: int) -> None:
        """Raise SpoolFull unless a chunk of `nbytes` fits now."""
        with self._lock:
            self._check_room_locked(nbytes)

    def wait_for_room(self, nbytes: int, timeout: float | None = None) -> bool:
        """Block (Block policy, in a worker thread) until `nbytes` fit; False on timeout."""
        with self._lock:
            def fits() -> bool:
                try:
                    self._check_room_locked(nbytes)
                except SpoolFull:
                    return False
                return True
            return self._lock.wait_for(fits, timeout)

    def begin_epoch(self, key: KeyRecord) -> None:
        """Journal a new epoch's wrapped key (public: only the recipient can open it)."""
        with self._lock:
            known = self._state.keys.get(key.epoch)
            if known is not None and known != key:
                raise SpoolError(f"key epoch {key.epoch} was already used in this spool")
            if known is None:
                self._journal.epoch(key)
                self._state.keys[key.epoch] = key

    def record_drop(self, start_ns: int, end_ns: int, plaintext_bytes: int) -> None:
        """Declare unsealed data discarded; the next sealed chunk must carry the flag."""
        with self._lock:
            drop = DropRecord(start_ns, end_ns, plaintext_bytes)
            self._journal.drop(drop)
            self._state.drops.append(drop)
            self._drop_pending = True

    def seal_into(
        self, sealer: Sealer, payload: Compressed, start_ns: int, end_ns: int
    ) -> SealedChunk:
        """Check room, seal, spool: a chunk is only sealed once it is sure to be kept.

        Raises SpoolFull before sealing, so no sequence number is spent on a
        chunk that could not be stored.
        """
        with self._lock:
            if sealer.session_uid != self.session.uid:
                raise SpoolMismatchError("sealer and spool are for different sessions")
            if sealer.epoch not in self._state.keys:
                raise SpoolError("call begin_epoch(sealer.key_record) before sealing")
            self._check_room_locked(sealer.sealed_size(len(payload.data)))
            chunk = sealer.seal(payload, start_ns, end_ns, dropped_before=self._drop_pending)
            self._write_locked(chunk)
            return chunk

    def put(self, chunk: SealedChunk) -> None:
        """Spool an already sealed chunk (prefer seal_into, which checks room first)."""
        with self._lock:
            self._check_room_locked(len(chunk.data))
            self._write_locked(chunk)

    def _write_locked(self, chunk: SealedChunk) -> None:
        seq = chunk.seq
        if self._drop_pending and not chunk.info.dropped_before:
            raise SpoolError("data was dropped: the next chunk must carry the data-dropped flag")
        if seq in self._state.chunks:
            raise SpoolError(f"chunk {seq} was already spooled; sealed chunks are never replaced")
        final = self._chunks_dir / _chunk_name(seq)
        tmp = self._tmp_dir / f"{_chunk_name(seq)}.{os.getpid()}.tmp"
        try:
            with tmp.open("xb") as out:
                out.write(chunk.data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpoolDiskFull(chunk, exc.strerror or "disk full") from exc
            raise
        os.replace(tmp, final)
        _fsync_dir(self._chunks_dir)
        try:
            self._journal.chunk(chunk.info)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # The chunk fit but its journal line did not: not journaled means not
            # spooled, so take the file back out; the caller writes it again later.
            final.unlink()
            _fsync_dir(self._chunks_dir)
            raise SpoolDiskFull(chunk, exc.strerror or "disk full") from exc
        self._state.chunks[seq] = chunk.info
        self._files[seq] = len(chunk.data)
        self._drop_pending = False

    def mark_finalized(self) -> None:
        with self._lock:
            self._journal.finalized()
            self._state.finalized = True

    # -- draining ------------------------------------------------------------------------

    def pending(self) -> list[PendingChunk]:
        """Chunks waiting for upload, lowest sequence first (a restart drains these first)."""
        with self._lock:
            out = []
            for seq in sorted(self._files):
                info = self._state.chunks.get(seq)
                out.append(PendingChunk(seq, self._chunks_dir / _chunk_name(seq),
                                        self._files[seq], info.sha256 if info else None))
            return out

    def read(self, seq: int) -> bytes:
        return (self._chunks_dir / _chunk_name(seq)).read_bytes()

    def info(self, seq: int) -> ChunkInfo | None:
        with self._lock:
            return self._state.chunks.get(seq)

    def acknowledge(self, seq: int, sha256: str) -> None:
        """The store holds chunk `seq` with this hash: drop the local copy."""
        with self._lock:
            info = self._state.chunks.get(seq)
            if info is not None and info.sha256 != sha256:
                raise SpoolError(
                    f"acknowledged chunk {seq} with sha256 {sha256[:16]}, but the spool "
                    f"sealed {info.sha256[:16]}: not removing it"
                )
            if seq not in self._files:
                return  # already acknowledged: a repeated ack is harmless
            (self._chunks_dir / _chunk_name(seq)).unlink()
            _fsync_dir(self._chunks_dir)
            del self._files[seq]
            self._lock.notify_all()

    def adopt(
        self,
        chunks: list[ChunkInfo],
        keys: dict[int, KeyRecord],
        started_at: dt.datetime | None = None,
    ) -> None:
        """Seed an empty spool with what the store already holds (a new pod after node loss)."""
        with self._lock:
            if self._state.chunks:
                raise SpoolError("adopt() is only for an empty spool")
            if started_at is not None:
                # The session began with the first pod, not with this one.
                self._journal.session(self.session, started_at)
                self._state.started_at = min(started_at, self._state.started_at or started_at)
            for key in keys.values():
                if key.epoch not in self._state.keys:
                    self._journal.epoch(key)
                    self._state.keys[key.epoch] = key
            for info in sorted(chunks, key=lambda c: c.seq):
                self._journal.chunk(info)
                self._state.chunks[info.seq] = info
