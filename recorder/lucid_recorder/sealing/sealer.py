"""Sealing the chunks of one key epoch.

A key epoch is one recorder process's lifetime on a session: the data key
exists only in this object's memory and is never written to disk in the
clear. A restarted recorder (same spool, or a new pod) therefore cannot
reopen the old key and starts a new epoch with a new data key, continuing
the sequence numbers and the hash chain where the last sealed chunk left
off. (Python cannot wipe `bytes`, so the key lives until garbage collection;
it never leaves the process.)

The run also makes an ed25519 signing key, likewise only in memory, and signs
every chunk (format 2) and every manifest it writes with it. Its public half
goes into each chunk header, the manifest and the session's status, where the
operator countersigns it: whoever holds the recipient's public key can seal
chunks, but only this run can sign them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from lucid_recorder.sealing.compression import Compressed
from lucid_recorder.sealing.container import (
    FLAG_DATA_DROPPED_BEFORE,
    GCM_TAG_BYTES,
    GENESIS,
    MAX_SEQ,
    VERSION,
    ChunkHeader,
    seal_and_hash,
)
from lucid_recorder.sealing.keys import KeyRecord, WrapSession, new_data_key, wrap_data_key


@dataclass(frozen=True)
class ChunkInfo:
    """What is known about a sealed chunk without its key: goes to spool, metadata, manifest."""

    seq: int
    epoch: int
    start_ns: int
    end_ns: int
    plaintext_bytes: int
    sealed_bytes: int
    sha256: str  # hex of the sealed bytes; the next chunk's header carries it too
    dropped_before: bool = False

    @classmethod
    def of(cls, header: ChunkHeader, sealed: bytes, sha256: str | None = None) -> ChunkInfo:
        return cls(header.seq, header.epoch, header.start_ns, header.end_ns,
                   header.plaintext_len, len(sealed),
                   sha256 or hashlib.sha256(sealed).hexdigest(), header.dropped_before)


@dataclass(frozen=True)
class SealedChunk:
    info: ChunkInfo
    data: bytes

    @property
    def seq(self) -> int:
        return self.info.seq


class RunSigner:
    """The run's ed25519 key: made here, kept in memory only, never written anywhere."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()
        self.public_raw = self._key.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return f"RunSigner(public={self.public_raw.hex()[:16]})"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class Sealer:
    """Allocates sequence numbers and seals chunks under one epoch's data key.

    Not thread-safe: one pipeline stage owns it. Sequence numbers come only
    from here, which is what makes the deterministic nonces unique. With
    `namespace` and `name` it writes chunk format 2 (signed, the whole session
    identity bound); without them, format 1 (kept for tests of old recordings).
    """

    def __init__(
        self,
        recipient: X25519PublicKey,
        session_uid: str,
        *,
        epoch: int = 0,
        next_seq: int = 0,
        prev_sha256: bytes = GENESIS,
        namespace: str = "",
        name: str = "",
    ) -> None:
        if len(prev_sha256) != 32:
            raise ValueError("prev_sha256 must be 32 bytes")
        if (next_seq == 0) != (prev_sha256 == GENESIS):
            raise ValueError("only seq 0 starts the chain, and it must start from GENESIS")
        self._session_uid = session_uid
        self.namespace, self.name = namespace, name
        self.version = VERSION if namespace and name else 1
        self.signer: RunSigner | None = RunSigner() if self.version >= 2 else None
        self._data_key = new_data_key()
        self.key_record: KeyRecord = wrap_data_key(
            self._data_key, recipient, WrapSession(session_uid, namespace, name), epoch,
            self.signer.public_raw if self.signer is not None else b"")
        self.epoch = epoch
        self.next_seq = next_seq
        self.prev_sha256 = prev_sha256

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"Sealer(session={self._session_uid}, epoch={self.epoch}, next_seq={self.next_seq})"

    @property
    def session_uid(self) -> str:
        return self._session_uid

    def sealed_size(self, payload_len: int) -> int:
        """Exact size of the sealed chunk for a payload: lets the spool check room first."""
        return self._header(0, 0, 0, payload_len, 0).sealed_len

    def _header(self, codec: int, flags: int, start_ns: int, payload_len: int, end_ns: int,
                plaintext_len: int = 0) -> ChunkHeader:
        return ChunkHeader(
            codec=codec,  # type: ignore[arg-type]
            flags=flags,
            seq=self.next_seq,
            epoch=self.epoch,
            start_ns=start_ns,
            end_ns=end_ns,
            plaintext_len=plaintext_len,
            ciphertext_len=payload_len + GCM_TAG_BYTES,
            prev_sha256=self.prev_sha256,
            key=self.key_record,
            session_uid=self._session_uid,
            namespace=self.namespace,
            name=self.name,
            version=self.version,
        )

    def seal(
        self, payload: Compressed, start_ns: int, end_ns: int, *, dropped_before: bool = False
    ) -> SealedChunk:
        if self.next_seq > MAX_SEQ:
            raise OverflowError("sequence numbers exhausted")
        if end_ns < start_ns:
            raise ValueError("end_ns is before start_ns")
        header = self._header(payload.codec, FLAG_DATA_DROPPED_BEFORE if dropped_before else 0,
                              start_ns, len(payload.data), end_ns, payload.plaintext_len)
        sealed, sha256 = seal_and_hash(header, payload.data, self._data_key,
                                       self.signer.sign if self.signer is not None else None)
        # Advance only once the chunk exists, so the state always describes the
        # last chunk handed out; a seq is never sealed twice either way.
        info = ChunkInfo.of(header, sealed, sha256)
        self.next_seq += 1
        self.prev_sha256 = bytes.fromhex(info.sha256)
        return SealedChunk(info, sealed)
