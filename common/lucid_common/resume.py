"""The resume point: what the store holds of a session, handed to a recorder that may
not read the store itself.

With scoped credentials (docs/storage.md, "Scoped credentials") a recorder's keys can only
write its session's objects. A new pod with an empty spool still has to continue the
chunk sequence and the hash chain after whatever earlier pods stored, and must never
overwrite chunk 0. So the operator, which holds the long-lived key, reads the store just
before it creates the pod and puts what it found into a ConfigMap the pod mounts: the
manifest's bytes as stored, the chunk names, and for every chunk the manifest does not
list, its size, its SHA-256 and its first bytes (the chunk header). The operator copies
bytes and hashes; the recorder parses and checks them exactly as it would the store's.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RESUME_FORMAT = "lucid.resume/v1"
# A ConfigMap's whole object must stay under 1 MiB; leave room for its metadata.
MAX_RESUME_BYTES = 1000 * 1024


class ResumePointError(ValueError):
    """A resume point that cannot be written or read; the message says which and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnlistedChunk(_Model):
    """A stored chunk the manifest does not (yet) list: uploaded after its last write."""

    seq: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    head: str = Field(description="base64 of the object's first bytes (its header)")

    def head_bytes(self) -> bytes:
        return base64.b64decode(self.head, validate=True)


class ResumePoint(_Model):
    format: Literal["lucid.resume/v1"] = RESUME_FORMAT
    session_uid: str = Field(min_length=1)
    taken_at: str = Field(description="RFC 3339 time the operator read the store")
    manifest: str | None = Field(None, description="base64 of manifest.json as stored")
    chunk_seqs: list[int] = Field(default_factory=list,
                                  description="sequence numbers of every stored chunk")
    unlisted: list[UnlistedChunk] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.manifest is None and not self.chunk_seqs

    def manifest_bytes(self) -> bytes | None:
        return None if self.manifest is None else base64.b64decode(self.manifest, validate=True)


def encode(point: ResumePoint) -> bytes:
    """gzip'd JSON (a manifest compresses well), refused past what a ConfigMap holds."""
    raw = point.model_dump_json().encode()
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    if len(packed) > MAX_RESUME_BYTES:
        raise ResumePointError(
            f"the resume point of {len(point.chunk_seqs)} stored chunks is {len(packed)} "
            f"bytes compressed, more than a ConfigMap holds ({MAX_RESUME_BYTES})")
    return packed


def decode(data: bytes, session_uid: str) -> ResumePoint:
    """The resume point in `data`, for this session only."""
    try:
        raw = gzip.decompress(data)
        point = ResumePoint.model_validate(json.loads(raw))
    except (OSError, EOFError, ValueError, ValidationError) as exc:
        raise ResumePointError(f"the resume point is unreadable: {_first_line(exc)}") from exc
    if point.session_uid != session_uid:
        raise ResumePointError(f"the resume point is of session {point.session_uid}, "
                               f"not {session_uid}")
    return point


def manifest_chunk_seqs(manifest: bytes) -> set[int]:
    """The chunks a stored manifest lists; empty when it is not a manifest one can read
    (then every stored chunk is described by header and hash instead)."""
    try:
        document: Any = json.loads(manifest)
        return {int(c["seq"]) for c in document["chunks"]}
    except (ValueError, TypeError, KeyError):
        return set()


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
