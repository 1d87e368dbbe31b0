"""The sealed chunk container: a plaintext header, then AES-256-GCM ciphertext.

Layout of version 2 (big-endian; docs/storage.md has the table):

    magic "LREC" | version | codec | flags | header length
    seq | key epoch | start ns | end ns | plaintext length | ciphertext length
    sha256 of the previous chunk's sealed bytes (zeros for seq 0)
    key record: recipient fingerprint | ephemeral X25519 key | wrapped data key
                | the run's ed25519 signing key
    uid length | namespace length | name length | session UID | namespace | name
    ciphertext (compressed payload + 16-byte GCM tag)
    ed25519 signature of "lucid/v2/chunk\0" || SHA-256(header || ciphertext)

The whole header is the GCM associated data, so every field in it (session,
sequence, chain hash, key record, time range, sizes) is authenticated, while
staying readable without a key for listing and recovery. The signature is what
the recipient's public key cannot give: proof of which recorder run wrote the
chunk (whoever holds the public key can seal, but only the run can sign).

Version 1 (no namespace, no name, no signing key, no signature) is still read.

Nonces are (epoch u32, seq u64): unique per data key by construction, since
a data key lives only in the memory of the one Sealer that allocates
sequence numbers strictly upwards, and a new process always makes a new key.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lucid_recorder.sealing.compression import MAX_PLAINTEXT_BYTES, Codec
from lucid_recorder.sealing.errors import AuthenticationError, ChunkFormatError
from lucid_recorder.sealing.keys import KeyRecord

MAGIC = b"LREC"
VERSION = 2
VERSIONS = (1, 2)
GCM_TAG_BYTES = 16
SIGNATURE_BYTES = 64
SIGNER_BYTES = 32
_CHUNK_LABEL = b"lucid/v2/chunk\x00"
GENESIS = bytes(32)  # the "previous chunk hash" of seq 0
MAX_SEQ = 2**64 - 1
MAX_UID_BYTES = 255

# Set on the first chunk sealed after unsealed data was deliberately dropped
# (spool full under the DropOldestUnsealed policy): the gap is declared, not silent.
FLAG_DATA_DROPPED_BEFORE = 0x0001
_KNOWN_FLAGS = FLAG_DATA_DROPPED_BEFORE

MAX_NAMESPACE_BYTES = 63
MAX_NAME_BYTES = 253

_FIXED_V1 = struct.Struct(">4sBBHIQIQQQQ32s32s32s48sB")
FIXED_HEADER_BYTES_V1 = _FIXED_V1.size  # 201
_FIXED = struct.Struct(">4sBBHIQIQQQQ32s32s32s48s32sBBB")
FIXED_HEADER_BYTES = _FIXED.size  # 235
_PREAMBLE = struct.Struct(">4sB")
MAX_HEADER_BYTES = FIXED_HEADER_BYTES + MAX_UID_BYTES + MAX_NAMESPACE_BYTES + MAX_NAME_BYTES


def fixed_header_bytes(version: int) -> int:
    return FIXED_HEADER_BYTES if version >= 2 else FIXED_HEADER_BYTES_V1


def chunk_digest(signed_part: bytes | memoryview) -> bytes:
    """What a run signs for a chunk: its header and ciphertext, hashed, with a label."""
    return _CHUNK_LABEL + hashlib.sha256(signed_part).digest()


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
    # Version 2 on: the session's namespace and name are authenticated too.
    namespace: str = ""
    name: str = ""
    version: int = VERSION

    @property
    def dropped_before(self) -> bool:
        return bool(self.flags & FLAG_DATA_DROPPED_BEFORE)

    @property
    def signed(self) -> bool:
        return self.version >= 2

    @property
    def header_len(self) -> int:
        size = fixed_header_bytes(self.version) + len(self.session_uid.encode())
        if self.version >= 2:
            size += len(self.namespace.encode()) + len(self.name.encode())
        return size

    @property
    def sealed_len(self) -> int:
        return self.header_len + self.ciphertext_len + (SIGNATURE_BYTES if self.signed else 0)

    def encode(self) -> bytes:
        uid = self.session_uid.encode()
        if not 0 < len(uid) <= MAX_UID_BYTES:
            raise ValueError(f"session UID must be 1..{MAX_UID_BYTES} bytes")
        if self.key.epoch != self.epoch:
            raise ValueError("key record epoch differs from the chunk's epoch")
        if self.version == 1:
            return _FIXED_V1.pack(
                MAGIC, 1, self.codec, self.flags, FIXED_HEADER_BYTES_V1 + len(uid),
                self.seq, self.epoch, self.start_ns, self.end_ns, self.plaintext_len,
                self.ciphertext_len, self.prev_sha256, self.key.recipient_fingerprint,
                self.key.ephemeral_public_key, self.key.wrapped_key, len(uid),
            ) + uid
        namespace, name = self.namespace.encode(), self.name.encode()
        if not 0 < len(namespace) <= MAX_NAMESPACE_BYTES or not 0 < len(name) <= MAX_NAME_BYTES:
            raise ValueError("namespace and name must be 1..63 and 1..253 bytes")
        if len(self.key.signer) != SIGNER_BYTES:
            raise ValueError("a version 2 chunk needs the run's signing key")
        return _FIXED.pack(
            MAGIC, 2, self.codec, self.flags, self.header_len,
            self.seq, self.epoch, self.start_ns, self.end_ns, self.plaintext_len,
            self.ciphertext_len, self.prev_sha256, self.key.recipient_fingerprint,
            self.key.ephemeral_public_key, self.key.wrapped_key, self.key.signer,
            len(uid), len(namespace), len(name),
        ) + uid + namespace + name

    @classmethod
    def decode(cls, sealed: bytes) -> ChunkHeader:
        """Parse and sanity-check a header; nothing here is authenticated yet."""
        if len(sealed) < _PREAMBLE.size:
            raise ChunkFormatError(f"{len(sealed)} bytes is too short for a chunk header")
        magic, version = _PREAMBLE.unpack_from(sealed)
        if magic != MAGIC:
            raise ChunkFormatError("not a Lucid chunk (bad magic)")
        if version not in VERSIONS:
            raise ChunkFormatError(f"chunk format version {version} is not supported")
        fixed = fixed_header_bytes(version)
        if len(sealed) < fixed:
            raise ChunkFormatError(f"{len(sealed)} bytes is too short for a chunk header")
        signer = b""
        ns_len = name_len = 0
        if version == 1:
            (_, _, codec, flags, header_len, seq, epoch, start_ns, end_ns,
             plaintext_len, ciphertext_len, prev, fpr, ephemeral, wrapped,
             uid_len) = _FIXED_V1.unpack_from(sealed)
        else:
            (_, _, codec, flags, header_len, seq, epoch, start_ns, end_ns,
             plaintext_len, ciphertext_len, prev, fpr, ephemeral, wrapped, signer,
             uid_len, ns_len, name_len) = _FIXED.unpack_from(sealed)
            if ns_len == 0 or name_len == 0:
                raise ChunkFormatError("namespace or name is empty")
        if header_len != fixed + uid_len + ns_len + name_len or uid_len == 0:
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
            uid = sealed[fixed:fixed + uid_len].decode()
            namespace = sealed[fixed + uid_len:fixed + uid_len + ns_len].decode()
            name = sealed[fixed + uid_len + ns_len:header_len].decode()
        except UnicodeDecodeError:
            raise ChunkFormatError("session UID, namespace or name is not UTF-8") from None
        return cls(codec_id, flags, seq, epoch, start_ns, end_ns, plaintext_len,
                   ciphertext_len, prev, KeyRecord(epoch, fpr, ephemeral, wrapped, signer),
                   uid, namespace, name, version)


def seal(header: ChunkHeader, payload: bytes, data_key: bytes,
         sign: Callable[[bytes], bytes] | None = None) -> bytes:
    """The sealed chunk; a version 2 header needs `sign`, the run's signing function."""
    return seal_and_hash(header, payload, data_key, sign)[0]


def seal_and_hash(header: ChunkHeader, payload: bytes, data_key: bytes,
                  sign: Callable[[bytes], bytes] | None = None) -> tuple[bytes, str]:
    """The sealed chunk and its SHA-256 (hex), in one pass over the bytes: the hash the
    run signs is the same running hash, before the signature is added."""
    if header.ciphertext_len != len(payload) + GCM_TAG_BYTES:
        raise ValueError("header ciphertext length does not match the payload")
    aad = header.encode()
    body = aad + AESGCM(data_key).encrypt(nonce(header.epoch, header.seq), payload, aad)
    running = hashlib.sha256(body)
    if not header.signed:
        return body, running.hexdigest()
    if sign is None:
        raise ValueError("a version 2 chunk must be signed")
    signature = sign(_CHUNK_LABEL + running.digest())
    running.update(signature)
    return body + signature, running.hexdigest()


def signed_part(sealed: bytes, header: ChunkHeader) -> tuple[memoryview, bytes]:
    """(header and ciphertext, signature) of a version 2 chunk of the right length."""
    end = header.header_len + header.ciphertext_len
    return memoryview(sealed)[:end], bytes(sealed[end:end + SIGNATURE_BYTES])


def open_sealed(sealed: bytes, data_key: bytes, header: ChunkHeader | None = None) -> bytes:
    """Authenticate and decrypt; returns the (still compressed) payload.

    The signature of a version 2 chunk is checked by the caller (verify), which knows
    which signing keys to trust; here only the AES-GCM tag is.
    """
    header = header or ChunkHeader.decode(sealed)
    if len(sealed) != header.sealed_len:
        raise ChunkFormatError(
            f"chunk is {len(sealed)} bytes, its header says {header.sealed_len} (truncated "
            "or extended)"
        )
    aad = memoryview(sealed)[: header.header_len]
    ciphertext = memoryview(sealed)[header.header_len : header.header_len + header.ciphertext_len]
    try:
        return AESGCM(data_key).decrypt(nonce(header.epoch, header.seq), ciphertext, aad)
    except InvalidTag:
        raise AuthenticationError(
            f"chunk {header.seq} failed authentication: its bytes were modified"
        ) from None
