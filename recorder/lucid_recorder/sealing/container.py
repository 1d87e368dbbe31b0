"""The sealed chunk container: a plaintext header, then AES-256-GCM ciphertext.

Layout (big-endian; docs/storage.md has the table):

    magic "LREC" | version | codec | flags | header length
    seq | key epoch | start ns | end ns | plaintext length | ciphertext length
    sha256 of the previous chunk's sealed bytes (zeros for seq 0)
    key record: recipient fingerprint | ephemeral X25519 key | wrapped data key
    uid length | session UID
    ciphertext (compressed payload + 16-byte GCM tag)

The whole header is the GCM associated data, so every field in it (session,
sequence, chain hash, key record, time range, sizes) is authenticated, while
staying readable without a key for listing and recovery.

Nonces are (epoch u32, seq u64): unique per data key by construction, since
a data key lives only in the memory of the one Sealer that allocates
sequence numbers strictly upwards, and a new process always makes a new key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lucid_recorder.sealing.compression import MAX_PLAINTEXT_BYTES, Codec
from lucid_recorder.sealing.errors import AuthenticationError, ChunkFormatError
from lucid_recorder.sealing.keys import KeyRecord

MAGIC = b"LREC"
VERSION = 1
GCM_TAG_BYTES = 16
GENESIS = bytes(32)  # the "previous chunk hash" of seq 0
MAX_SEQ = 2**64 - 1
MAX_UID_BYTES = 255

# Set on the first chunk sealed after unsealed data was deliberately dropped
# (spool full under the DropOldestUnsealed policy): the gap is declared, not silent.
FLAG_DATA_DROPPED_BEFORE = 0x0001
_KNOWN_FLAGS = FLAG_DATA_DROPPED_BEFORE

_FIXED = struct.Struct(">4sBBHIQIQQQQ32s32s32s48sB")
FIXED_HEADER_BYTES = _FIXED.size  # 201
MAX_HEADER_BYTES = FIXED_HEADER_BYTES + MAX_UID_BYTES


def nonce(epoch: int, seq: int) -> bytes:
    return struct.pack(">IQ", epoch, seq)


@dataclass(frozen=True)
class ChunkHeader:
    codec: Codec
    flags: int
    seq: int
    epoch: int
    start_ns: int
    end_ns: int
    plaintext_len: int
    ciphertext_len: int
    prev_sha256: bytes
    key: KeyRecord
    session_uid: str

    @property
    def dropped_before(self) -> bool:
        return bool(self.flags & FLAG_DATA_DROPPED_BEFORE)

    @property
    def header_len(self) -> int:
        return FIXED_HEADER_BYTES + len(self.session_uid.encode())

    @property
    def sealed_len(self) -> int:
        return self.header_len + self.ciphertext_len

    def encode(self) -> bytes:
        uid = self.session_uid.encode()
        if not 0 < len(uid) <= MAX_UID_BYTES:
            raise ValueError(f"session UID must be 1..{MAX_UID_BYTES} bytes")
        if self.key.epoch != self.epoch:
            raise ValueError("key record epoch differs from the chunk's epoch")
        return _FIXED.pack(
            MAGIC, VERSION, self.codec, self.flags, FIXED_HEADER_BYTES + len(uid),
            self.seq, self.epoch, self.start_ns, self.end_ns, self.plaintext_len,
            self.ciphertext_len, self.prev_sha256, self.key.recipient_fingerprint,
            self.key.ephemeral_public_key, self.key.wrapped_key, len(uid),
        ) + uid

    @classmethod
    def decode(cls, sealed: bytes) -> ChunkHeader:
        """Parse and sanity-check a header; nothing here is authenticated yet."""
        if len(sealed) < FIXED_HEADER_BYTES:
            raise ChunkFormatError(f"{len(sealed)} bytes is too short for a chunk header")
        (magic, version, codec, flags, header_len, seq, epoch, start_ns, end_ns,
         plaintext_len, ciphertext_len, prev, fpr, ephemeral, wrapped,
         uid_len) = _FIXED.unpack_from(sealed)
        if magic != MAGIC:
            raise ChunkFormatError("not a Lucid chunk (bad magic)")
        if version != VERSION:
            raise ChunkFormatError(f"chunk format version {version} is not supported")
        if header_len != FIXED_HEADER_BYTES + uid_len or uid_len == 0:
            raise ChunkFormatError("inconsistent header length")
        if len(sealed) < header_len:
            raise ChunkFormatError("header is cut short")
        try:
            codec_id = Codec(codec)
        except ValueError:
            raise ChunkFormatError(f"unknown codec id {codec}") from None
        if flags & ~_KNOWN_FLAGS:
            raise ChunkFormatError(f"unknown flags {flags:#06x}")
        if end_ns < start_ns:
            raise ChunkFormatError("time range ends before it starts")
        if plaintext_len > MAX_PLAINTEXT_BYTES:
            raise ChunkFormatError(f"stated plaintext length {plaintext_len} is too large")
        if ciphertext_len < GCM_TAG_BYTES:
            raise ChunkFormatError("ciphertext shorter than a GCM tag")
        try:
            uid = sealed[FIXED_HEADER_BYTES:header_len].decode()
        except UnicodeDecodeError:
            raise ChunkFormatError("session UID is not UTF-8") from None
        return cls(codec_id, flags, seq, epoch, start_ns, end_ns, plaintext_len,
                   ciphertext_len, prev, KeyRecord(epoch, fpr, ephemeral, wrapped), uid)


def seal(header: ChunkHeader, payload: bytes, data_key: bytes) -> bytes:
    if header.ciphertext_len != len(payload) + GCM_TAG_BYTES:
        raise ValueError("header ciphertext length does not match the payload")
    aad = header.encode()
    return aad + AESGCM(data_key).encrypt(nonce(header.epoch, header.seq), payload, aad)


def open_sealed(sealed: bytes, data_key: bytes, header: ChunkHeader | None = None) -> bytes:
    """Authenticate and decrypt; returns the (still compressed) payload."""
    header = header or ChunkHeader.decode(sealed)
    if len(sealed) != header.sealed_len:
        raise ChunkFormatError(
            f"chunk is {len(sealed)} bytes, its header says {header.sealed_len} (truncated "
            "or extended)"
        )
    aad = memoryview(sealed)[: header.header_len]
    try:
        return AESGCM(data_key).decrypt(
            nonce(header.epoch, header.seq), memoryview(sealed)[header.header_len :], aad
        )
    except InvalidTag:
        raise AuthenticationError(
            f"chunk {header.seq} failed authentication: its bytes were modified"
        ) from None
