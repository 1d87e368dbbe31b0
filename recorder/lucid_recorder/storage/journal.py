"""The spool's append-only journal: what a restarted recorder needs to resume.

One JSON object per line, fsynced per append. It holds only public facts
(chunk hashes and sizes, wrapped keys, drops), never a data key: a restart
reads the chain head and the epochs used so far from here, then starts a
new epoch with a new key.

A crash can tear the last line; loading drops a torn tail and truncates the
file before the next append, so one bad write never poisons the journal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lucid_recorder.sealing.container import GENESIS
from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.manifest import ManifestKey, SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo
from lucid_recorder.storage.errors import SpoolError


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class DropRecord:
    """Unsealed data discarded under the DropOldestUnsealed policy."""

    start_ns: int
    end_ns: int
    plaintext_bytes: int


@dataclass
class SessionState:
    """Everything known about the session so far; the manifest is built from it."""

    session: SessionIdentity | None = None
    started_at: dt.datetime | None = None
    chunks: dict[int, ChunkInfo] = field(default_factory=dict)
    keys: dict[int, KeyRecord] = field(default_factory=dict)
    drops: list[DropRecord] = field(default_factory=list)
    finalized: bool = False

    @property
    def empty(self) -> bool:
        return not self.chunks and not self.keys

    @property
    def next_seq(self) -> int:
        return max(self.chunks, default=-1) + 1

    @property
    def prev_sha256(self) -> bytes:
        if not self.chunks:
            return GENESIS
        return bytes.fromhex(self.chunks[max(self.chunks)].sha256)

    @property
    def next_epoch(self) -> int:
        used = set(self.keys) | {c.epoch for c in self.chunks.values()}
        return max(used, default=-1) + 1


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SessionState:
        state = SessionState()
        if not self.path.exists():
            return state
        raw = self.path.read_bytes()
        good_end = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn tail of a crashed append
            try:
                record = json.loads(line)
                self._apply(state, record)
            except (ValueError, KeyError, TypeError) as exc:
                raise SpoolError(
                    f"spool journal {self.path} has a corrupt record at byte {good_end}: {exc}"
                ) from exc
            good_end += len(line)
        if good_end != len(raw):
            with self.path.open("r+b") as out:
                out.truncate(good_end)
                os.fsync(out.fileno())
        return state

    @staticmethod
    def _apply(state: SessionState, record: dict[str, Any]) -> None:
        kind = record["t"]
        if kind == "session":
            session = SessionIdentity.model_validate(record["session"])
            if state.session is not None and state.session.uid != session.uid:
                raise ValueError("two sessions in one journal")
            state.session = session
            at = dt.datetime.fromisoformat(record["at"])
            # Repeated when a recovered pod adopts the store's earlier start.
            state.started_at = min(at, state.started_at or at)
        elif kind == "epoch":
            key = ManifestKey.model_validate(record["key"]).record()
            state.keys[key.epoch] = key
        elif kind == "chunk":
            info = ChunkInfo(**record["chunk"])
            state.chunks[info.seq] = info
        elif kind == "drop":
            state.drops.append(DropRecord(**record["drop"]))
        elif kind == "finalized":
            state.finalized = True
        else:
            raise ValueError(f"unknown record type {kind!r}")

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        # Unbuffered: a failed write must not linger in a buffer that close() retries.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                # A full disk can take part of a line; cut it off, or the next append
                # would glue its record onto the torn one and corrupt the journal.
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def session(self, session: SessionIdentity, at: dt.datetime | None = None) -> None:
        self._append({"t": "session", "session": session.model_dump(mode="json"),
                      "at": (at or _now()).isoformat()})

    def epoch(self, key: KeyRecord) -> None:
        self._append({"t": "epoch", "key": ManifestKey.of(key).model_dump(mode="json"),
                      "at": _now().isoformat()})

    def chunk(self, info: ChunkInfo) -> None:
        self._append({"t": "chunk", "chunk": asdict(info)})

    def drop(self, drop: DropRecord) -> None:
        self._append({"t": "drop", "drop": asdict(drop), "at": _now().isoformat()})

    def finalized(self) -> None:
        self._append({"t": "finalized", "at": _now().isoformat()})

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0
