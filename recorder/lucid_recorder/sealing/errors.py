"""Errors of the sealing layer.

Messages name keys only by fingerprint and never carry key bytes, plaintext
or PEM text: they end up in logs, events and the RecordingSession status.
"""


class SealingError(Exception):
    """Base class of everything the sealing layer raises."""


class KeyFormatError(SealingError):
    """A key file or Secret value is not the X25519 PEM key it should be."""


class UnwrapError(SealingError):
    """A wrapped data key cannot be opened with the given private key."""


class ChunkFormatError(SealingError):
    """Sealed bytes are not a chunk container this code understands."""


class DecompressionError(SealingError):
    """An authenticated payload does not decompress to the size its header states."""


class IntegrityError(SealingError):
    """Decryption met a chunk that is not authentic, in place or of this session."""


class AuthenticationError(SealingError):
    """AES-GCM rejected a chunk: its header or ciphertext is not what was sealed."""


class ObjectReadError(SealingError):
    """A listed object could not be read (store error, vanished, unreadable file)."""
