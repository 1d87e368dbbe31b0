"""Where a session's objects live in the bucket (docs/storage.md, "Object layout").

    <prefix>/<namespace>/<name>/<uid>/chunks/<seq:08d>.lrec
    <prefix>/<namespace>/<name>/<uid>/manifest.json
    <prefix>/<namespace>/<name>/<uid>/seals/<counter:08d>.json   the operator's seals

The UID keeps a re-created session of the same name apart from the old one. The names
themselves are lucid_common.layout's, which the operator reads too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lucid_common.evidence import SEALS_DIR, seal_key
from lucid_common.layout import (
    CHUNKS_DIR,
    MANIFEST_NAME,
    chunk_name,
    parse_chunk_name,
    session_root,
)
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo

CHUNK_CONTENT_TYPE = "application/vnd.lucid.chunk"
MANIFEST_CONTENT_TYPE = "application/json"
_SEAL_NAME = re.compile(r"^([0-9]{8,20})\.json$", re.ASCII)
_META = "lucid-"


@dataclass(frozen=True)
class SessionLayout:
    prefix: str
    session: SessionIdentity

    @property
    def root(self) -> str:
        s = self.session
        return session_root(self.prefix, s.namespace, s.name, s.uid)

    @property
    def seals_prefix(self) -> str:
        return self.root + SEALS_DIR

    def seal_key(self, counter: int) -> str:
        return seal_key(self.root, counter)

    def parse_seal_key(self, key: str) -> int | None:
        if not key.startswith(self.seals_prefix):
            return None
        match = _SEAL_NAME.match(key[len(self.seals_prefix):])
        if match is None or f"{int(match.group(1)):08d}" != match.group(1):
            return None
        return int(match.group(1))

    @property
    def chunks_prefix(self) -> str:
        return self.root + CHUNKS_DIR

    @property
    def manifest_key(self) -> str:
        return self.root + MANIFEST_NAME

    def chunk_key(self, seq: int) -> str:
        return self.chunks_prefix + chunk_name(seq)

    def parse_chunk_key(self, key: str) -> int | None:
        """The sequence number in a chunk object's name; None for anything else."""
        if not key.startswith(self.chunks_prefix):
            return None
        return parse_chunk_name(key[len(self.chunks_prefix):])


def chunk_metadata(session_uid: str, info: ChunkInfo) -> dict[str, str]:
    """User metadata (x-amz-meta-lucid-*) on a chunk object.

    For listing and recovery only; verification trusts the authenticated
    header, never this.
    """
    return {
        f"{_META}session-uid": session_uid,
        f"{_META}seq": str(info.seq),
        f"{_META}epoch": str(info.epoch),
        f"{_META}start-ns": str(info.start_ns),
        f"{_META}end-ns": str(info.end_ns),
        f"{_META}plaintext-bytes": str(info.plaintext_bytes),
        f"{_META}sealed-bytes": str(info.sealed_bytes),
        f"{_META}sha256": info.sha256,
        f"{_META}dropped-before": "true" if info.dropped_before else "false",
    }


def info_from_metadata(metadata: dict[str, str]) -> ChunkInfo:
    """Inverse of chunk_metadata, from the headers a stat returns (any case)."""
    meta = {
        k.lower().removeprefix("x-amz-meta-"): v for k, v in metadata.items()
        if k.lower().startswith("x-amz-meta-" + _META)
    }
    try:
        return ChunkInfo(
            seq=int(meta[f"{_META}seq"]),
            epoch=int(meta[f"{_META}epoch"]),
            start_ns=int(meta[f"{_META}start-ns"]),
            end_ns=int(meta[f"{_META}end-ns"]),
            plaintext_bytes=int(meta[f"{_META}plaintext-bytes"]),
            sealed_bytes=int(meta[f"{_META}sealed-bytes"]),
            sha256=meta[f"{_META}sha256"],
            dropped_before=meta.get(f"{_META}dropped-before") == "true",
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"chunk object metadata is incomplete or invalid: {exc}") from exc
