"""Compression, encryption and verification of recorded chunks (pure: no I/O but key files).

docs/storage.md describes the formats and the reasoning behind them.
"""

from lucid_recorder.sealing.compression import MAX_PLAINTEXT_BYTES, Codec, Compressed, compress
from lucid_recorder.sealing.container import GENESIS, ChunkHeader
from lucid_recorder.sealing.errors import (
    AuthenticationError,
    ChunkFormatError,
    DecompressionError,
    IntegrityError,
    KeyFormatError,
    SealingError,
    UnwrapError,
)
from lucid_recorder.sealing.keys import (
    KeyRecord,
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    read_private_key,
    read_public_key,
)
from lucid_recorder.sealing.manifest import (
    Gap,
    GapReason,
    Manifest,
    SessionIdentity,
    build_manifest,
    derive_gaps,
)
from lucid_recorder.sealing.sealer import ChunkInfo, SealedChunk, Sealer
from lucid_recorder.sealing.verify import (
    Problem,
    ProblemCode,
    Segment,
    VerifyReport,
    decrypt_segments,
    verify,
    verify_and_decrypt,
)

__all__ = [
    "GENESIS",
    "MAX_PLAINTEXT_BYTES",
    "AuthenticationError",
    "ChunkFormatError",
    "ChunkHeader",
    "ChunkInfo",
    "Codec",
    "Compressed",
    "DecompressionError",
    "Gap",
    "GapReason",
    "IntegrityError",
    "KeyFormatError",
    "KeyRecord",
    "Manifest",
    "Problem",
    "ProblemCode",
    "SealedChunk",
    "Sealer",
    "SealingError",
    "Segment",
    "SessionIdentity",
    "UnwrapError",
    "VerifyReport",
    "build_manifest",
    "compress",
    "decrypt_segments",
    "derive_gaps",
    "fingerprint",
    "keygen",
    "load_private_key",
    "load_public_key",
    "read_private_key",
    "read_public_key",
    "verify",
    "verify_and_decrypt",
]
