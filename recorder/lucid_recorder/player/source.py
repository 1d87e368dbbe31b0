"""Where segments come from. The player only needs plain segment bytes by sequence number.

A MinIO source that downloads, decrypts and decompresses `<seq>.lrec` objects is one
more class with these three methods; nothing else in the player changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from lucid_recorder.format.recording import FinishedSegment

from .errors import SourceError

SEGMENT_NAME = re.compile(r"^(\d{1,10})\.seg$")


@runtime_checkable
class RecordingSource(Protocol):
    def describe(self) -> str:
        """A short human name for messages, e.g. the directory or object prefix."""
        ...

    def sequence_numbers(self) -> list[int]:
        """The sequence numbers present, ascending. Missing numbers are lost segments."""
        ...

    def read(self, seq: int) -> bytes:
        """The plain (decrypted, decompressed) segment bytes; SourceError if unavailable."""
        ...


class LocalDirectorySource:
    """A directory of plain `<seq>.seg` files (other files are ignored)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise SourceError(f"{self.directory}: not a directory")
        self._paths: dict[int, Path] = {}
        try:
            entries = list(self.directory.iterdir())
        except OSError as exc:
            raise SourceError(f"{self.directory}: cannot list: {exc.strerror}") from None
        for path in entries:
            match = SEGMENT_NAME.match(path.name)
            if match and path.is_file():
                seq = int(match.group(1))
                if seq in self._paths:
                    raise SourceError(f"{self.directory}: two files for segment {seq}: "
                                      f"{self._paths[seq].name} and {path.name}")
                self._paths[seq] = path

    def describe(self) -> str:
        return str(self.directory)

    def sequence_numbers(self) -> list[int]:
        return sorted(self._paths)

    def path(self, seq: int) -> Path:
        if seq not in self._paths:
            raise SourceError(f"{self.directory}: segment {seq} not found")
        return self._paths[seq]

    def read(self, seq: int) -> bytes:
        path = self.path(seq)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read: {exc.strerror}") from None


def segment_filename(seq: int) -> str:
    # Zero-padded so `ls` lists them in order; the reader accepts any width.
    return f"{seq:06d}.seg"


def write_local_recording(directory: str | Path, segments: Iterable[FinishedSegment]) -> list[Path]:
    """Store finished segments as `<seq>.seg` files (used by tests and `demo`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for segment in segments:
        path = directory / segment_filename(segment.seq)
        path.write_bytes(segment.data)
        paths.append(path)
    return paths
