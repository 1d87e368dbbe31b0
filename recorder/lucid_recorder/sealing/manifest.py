"""The session manifest: what the recorder sealed, written to manifest.json.

It is a convenience and a completion marker, not the root of trust: every
fact in it is also in the authenticated chunk headers, and `verify` checks
the two against each other. `complete` is serialised last and is true only
in the final manifest, written after every chunk was acknowledged; any
other state (no manifest, or complete: false) means the session is
incomplete.

Format 2 adds the run's signing key to each key epoch and a signature by the
run that wrote the manifest: a manifest rebuilt by someone who can only write
the bucket (from the chunks' plaintext headers, say) no longer verifies.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.sealer import ChunkInfo, RunSigner

MANIFEST_FORMAT_V1 = "lucid.manifest/v1"
MANIFEST_FORMAT = "lucid.manifest/v2"
_MANIFEST_LABEL = b"lucid/v2/manifest\x00"
# A final manifest lists about 250 bytes per chunk: 16 MiB holds some 60 000 chunks (six
# weeks of the default 60 s chunks). Anything larger is refused unread, and verification
# goes on without it (the chunks describe themselves; the operator's seal pins them).


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SessionIdentity(_Model):
    namespace: str
    name: str
    uid: str


class ManifestKey(_Model):
    """A wrapped data key (public information: only the recipient can open it)."""

    epoch: int = Field(ge=0, lt=2**32)
    recipient_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    ephemeral_public_key: str
    wrapped_key: str
    # The run's ed25519 public key (format 2).
    signing_public_key: str | None = None

    @classmethod
    def of(cls, record: KeyRecord) -> ManifestKey:
        return cls(
            epoch=record.epoch,
            recipient_fingerprint=record.recipient_fingerprint.hex(),
            ephemeral_public_key=base64.b64encode(record.ephemeral_public_key).decode(),
            wrapped_key=base64.b64encode(record.wrapped_key).decode(),
            signing_public_key=(base64.b64encode(record.signer).decode() if record.signer
                                else None),
        )

    @model_validator(mode="after")
    def _decodes(self) -> ManifestKey:
        # A manifest whose key record cannot even be decoded is rejected on load.
        self.record()
        return self

    def record(self) -> KeyRecord:
        return KeyRecord(
            self.epoch,
            bytes.fromhex(self.recipient_fingerprint),
            base64.b64decode(self.ephemeral_public_key, validate=True),
            base64.b64decode(self.wrapped_key, validate=True),
            base64.b64decode(self.signing_public_key, validate=True)
            if self.signing_public_key else b"",
        )


class ManifestChunk(_Model):
    seq: int = Field(ge=0)
    epoch: int = Field(ge=0)
    start_ns: int = Field(ge=0)
    end_ns: int = Field(ge=0)
    plaintext_bytes: int = Field(ge=0)
    sealed_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    dropped_before: bool = False

    @classmethod
    def of(cls, info: ChunkInfo) -> ManifestChunk:
        return cls(seq=info.seq, epoch=info.epoch, start_ns=info.start_ns, end_ns=info.end_ns,
                   plaintext_bytes=info.plaintext_bytes, sealed_bytes=info.sealed_bytes,
                   sha256=info.sha256, dropped_before=info.dropped_before)

    def info(self) -> ChunkInfo:
        return ChunkInfo(self.seq, self.epoch, self.start_ns, self.end_ns,
                         self.plaintext_bytes, self.sealed_bytes, self.sha256,
                         self.dropped_before)


class GapReason(StrEnum):
    # A new key epoch: the recorder restarted and lost what it had not stored
    # (on the same spool: the unsealed chunk; after node loss: also the unuploaded ones).
    RECORDER_RESTART = "RecorderRestart"
    # The spool was full and unsealed data was dropped under DropOldestUnsealed.
    DATA_DROPPED = "DataDropped"


class Gap(_Model):
    """A span the recorder declares it did not record (never a silent loss)."""

    after_seq: int | None = Field(description="last chunk before the gap")
    before_seq: int = Field(description="first chunk after the gap")
    start_ns: int
    end_ns: int
    reason: GapReason

    def describe(self) -> str:
        seconds = max(0, self.end_ns - self.start_ns) / 1e9
        where = (f"between chunk {self.after_seq} and chunk {self.before_seq}"
                 if self.after_seq is not None else f"before chunk {self.before_seq}")
        what = ("recorder restarted; what it had not yet stored was lost"
                if self.reason is GapReason.RECORDER_RESTART
                else "spool was full; unsealed data was dropped by policy")
        return f"gap of {seconds:.3f}s {where}: {what}"


def derive_gaps(chunks: Iterable[ChunkInfo]) -> list[Gap]:
    """Gaps declared by consecutive chunks: a new epoch, or the data-dropped flag."""
    gaps: list[Gap] = []
    prev: ChunkInfo | None = None
    for info in sorted(chunks, key=lambda c: c.seq):
        adjacent = prev is not None and prev.seq + 1 == info.seq
        start = prev.end_ns if adjacent and prev is not None else info.start_ns
        after = prev.seq if adjacent and prev is not None else None
        if info.dropped_before:
            gaps.append(Gap(after_seq=after, before_seq=info.seq, start_ns=start,
                            end_ns=info.start_ns, reason=GapReason.DATA_DROPPED))
        elif adjacent and prev is not None and info.epoch != prev.epoch:
            gaps.append(Gap(after_seq=after, before_seq=info.seq, start_ns=start,
                            end_ns=info.start_ns, reason=GapReason.RECORDER_RESTART))
        prev = info
    return gaps


class Totals(_Model):
    chunks: int = Field(ge=0)
    plaintext_bytes: int = Field(ge=0)
    sealed_bytes: int = Field(ge=0)


class ManifestSignature(_Model):
    """Which run signed the manifest (its key epoch) and the ed25519 signature."""

    epoch: int = Field(ge=0, lt=2**32)
    value: str


class Manifest(_Model):
    format: Literal["lucid.manifest/v1", "lucid.manifest/v2"] = MANIFEST_FORMAT
    session: SessionIdentity
    recipient_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    started_at: dt.datetime
    stopped_at: dt.datetime | None = None
    updated_at: dt.datetime
    keys: list[ManifestKey]
    chunks: list[ManifestChunk]
    gaps: list[Gap]
    totals: Totals
    last_chunk_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    signature: ManifestSignature | None = None
    # Declared last so it is serialised last: the completion marker.
    complete: bool = False

    def to_json(self) -> bytes:
        if self.format == MANIFEST_FORMAT_V1:
            # Exactly what format 1 writers wrote: its readers know no other field.
            v1_only: Any = {"signature": True, "keys": {"__all__": {"signing_public_key"}}}
            return self.model_dump_json(by_alias=True, indent=1, exclude=v1_only).encode() \
                + b"\n"
        return self.model_dump_json(by_alias=True, indent=1, exclude_none=True).encode() + b"\n"

    def signing_bytes(self) -> bytes:
        """What the run signs: the manifest without its signature, as canonical JSON."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True,
                               exclude={"signature"})
        return _MANIFEST_LABEL + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=True).encode()

    def signed_by(self, public_raw: bytes) -> bool:
        if self.signature is None:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(
                base64.b64decode(self.signature.value, validate=True), self.signing_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return cls.model_validate_json(data)

    def key_records(self) -> dict[int, KeyRecord]:
        return {key.epoch: key.record() for key in self.keys}


def build_manifest(
    session: SessionIdentity,
    recipient_fingerprint: bytes,
    chunks: Sequence[ChunkInfo],
    keys: Iterable[KeyRecord],
    *,
    started_at: dt.datetime,
    now: dt.datetime,
    complete: bool,
    signer: RunSigner | None = None,
    epoch: int = 0,
) -> Manifest:
    """The manifest for `chunks` (every chunk sealed so far, in any order).

    With `signer` (the run of key epoch `epoch`), format 2, signed; else format 1.
    """
    ordered = sorted(chunks, key=lambda c: c.seq)
    manifest = Manifest(
        format=MANIFEST_FORMAT if signer is not None else MANIFEST_FORMAT_V1,
        session=session,
        recipient_fingerprint=recipient_fingerprint.hex(),
        started_at=started_at,
        stopped_at=now if complete else None,
        updated_at=now,
        keys=[ManifestKey.of(k) for k in sorted(keys, key=lambda k: k.epoch)],
        chunks=[ManifestChunk.of(c) for c in ordered],
        gaps=derive_gaps(ordered),
        totals=Totals(
            chunks=len(ordered),
            plaintext_bytes=sum(c.plaintext_bytes for c in ordered),
            sealed_bytes=sum(c.sealed_bytes for c in ordered),
        ),
        last_chunk_sha256=ordered[-1].sha256 if ordered else None,
        complete=complete,
    )
    if signer is None:
        return manifest
    value = base64.b64encode(signer.sign(manifest.signing_bytes())).decode()
    return manifest.model_copy(update={"signature": ManifestSignature(epoch=epoch, value=value)})
