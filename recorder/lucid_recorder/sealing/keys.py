"""Recipient keys and the wrapping of per-epoch data keys.

The recipient holds an X25519 key pair; only its public half enters the
cluster. A data key is wrapped ECIES-style: a fresh ephemeral X25519 key
agrees a secret with the recipient, HKDF-SHA256 turns it into a one-time
key-encryption key, and AES-256-GCM seals the data key under it. HKDF's info
and the GCM associated data both bind the session (version 2: UID, namespace and
name; version 1: the UID only), the key epoch and (version 2) the run's signing
key, so a wrapped key copied into another session, epoch or run does not open.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lucid_recorder.sealing.errors import KeyFormatError, UnwrapError

DATA_KEY_BYTES = 32
WRAPPED_KEY_BYTES = DATA_KEY_BYTES + 16  # GCM appends a 16-byte tag
X25519_BYTES = 32
FINGERPRINT_BYTES = 32
_WRAP_LABEL = b"lucid/v1/data-key-wrap\x00"
_WRAP_LABEL_V2 = b"lucid/v2/data-key-wrap\x00"
SIGNER_BYTES = 32
# The key-encryption key is fresh for every wrap (new ephemeral key), so one
# fixed nonce never meets the same key twice.
_WRAP_NONCE = bytes(12)


def fingerprint(public_key: X25519PublicKey) -> bytes:
    """SHA-256 of the raw public key: names a recipient without revealing anything."""
    return hashlib.sha256(public_key.public_bytes_raw()).digest()


def short_fingerprint(fpr: bytes) -> str:
    """The first 16 hex digits: enough for people to tell keys apart in messages."""
    return fpr.hex()[:16]


@dataclass(frozen=True)
class KeyRecord:
    """A data key wrapped for one recipient, for one session and key epoch."""

    epoch: int
    recipient_fingerprint: bytes
    ephemeral_public_key: bytes
    wrapped_key: bytes
    # The run's raw ed25519 public key (chunk format 2); empty in format 1.
    signer: bytes = b""

    def __post_init__(self) -> None:
        if len(self.signer) not in (0, SIGNER_BYTES):
            raise ValueError(f"signing key must be {SIGNER_BYTES} bytes, not {len(self.signer)}")
        if not 0 <= self.epoch < 2**32:
            raise ValueError(f"key epoch {self.epoch} is outside 0..2^32-1")
        for name, value, size in (
            ("recipient fingerprint", self.recipient_fingerprint, FINGERPRINT_BYTES),
            ("ephemeral public key", self.ephemeral_public_key, X25519_BYTES),
            ("wrapped key", self.wrapped_key, WRAPPED_KEY_BYTES),
        ):
            if len(value) != size:
                raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


@dataclass(frozen=True)
class WrapSession:
    """What a wrapped key is bound to besides its epoch."""

    uid: str
    namespace: str = ""
    name: str = ""


def _wrap_context(session: WrapSession, epoch: int, signer: bytes) -> bytes:
    if not signer:  # format 1
        return _WRAP_LABEL + struct.pack(">I", epoch) + session.uid.encode()
    parts = [value.encode() for value in (session.uid, session.namespace, session.name)]
    if any(len(part) > 255 for part in parts):
        raise ValueError("session UID, namespace and name must be at most 255 bytes each")
    # Length-prefixed, so no two sessions share a context.
    return (_WRAP_LABEL_V2 + struct.pack(">I", epoch)
            + b"".join(bytes([len(part)]) + part for part in parts) + signer)


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes, context: bytes) -> bytes:
    # Salting with both public keys ties the derived key to this exact exchange.
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=context
    ).derive(shared)


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def wrap_data_key(
    data_key: bytes, recipient: X25519PublicKey, session: WrapSession | str, epoch: int,
    signer: bytes = b"",
) -> KeyRecord:
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"data key must be {DATA_KEY_BYTES} bytes")
    if isinstance(session, str):
        session = WrapSession(session)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes_raw()
    recipient_raw = recipient.public_bytes_raw()
    context = _wrap_context(session, epoch, signer)
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError as exc:
        # A low-order point yields an all-zero secret; cryptography refuses it.
        raise KeyFormatError("recipient public key is not a usable X25519 point") from exc
    kek = _kek(shared, ephemeral_raw, recipient_raw, context)
    wrapped = AESGCM(kek).encrypt(_WRAP_NONCE, data_key, context)
    return KeyRecord(epoch, fingerprint(recipient), ephemeral_raw, wrapped, signer)


def unwrap_data_key(record: KeyRecord, private_key: X25519PrivateKey,
                    session: WrapSession | str) -> bytes:
    if isinstance(session, str):
        session = WrapSession(session)
    mine = fingerprint(private_key.public_key())
    if record.recipient_fingerprint != mine:
        raise UnwrapError(
            f"key epoch {record.epoch} is encrypted to recipient "
            f"{short_fingerprint(record.recipient_fingerprint)}, but the private key given "
            f"belongs to {short_fingerprint(mine)}"
        )
    context = _wrap_context(session, record.epoch, record.signer)
    try:
        peer = X25519PublicKey.from_public_bytes(record.ephemeral_public_key)
        shared = private_key.exchange(peer)
        kek = _kek(shared, record.ephemeral_public_key,
                   private_key.public_key().public_bytes_raw(), context)
        return AESGCM(kek).decrypt(_WRAP_NONCE, record.wrapped_key, context)
    except (InvalidTag, ValueError) as exc:
        raise UnwrapError(
            f"the data key of epoch {record.epoch} does not open for session {session.uid}: "
            "its key record was altered or copied from another session"
        ) from exc


# --- PEM files -------------------------------------------------------------


def _describe(key: object) -> str:
    return type(key).__name__.removeprefix("_").replace("PublicKey", "").replace("PrivateKey", "")


def load_public_key(pem: bytes, source: str = "recipient public key") -> X25519PublicKey:
    """Parse the recipient's public key; `source` names it in errors (never its content)."""
    if b"PRIVATE KEY" in pem:
        # Someone put the private key into the cluster: refuse it loudly.
        raise KeyFormatError(
            f"{source} holds a PRIVATE key; the cluster must only get the public key "
            "(public.pem from `lucid-seal keygen`)"
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(
            f"{source} is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----', "
            f"X25519, as written by `lucid-seal keygen`)"
        ) from exc
    if not isinstance(key, X25519PublicKey):
        raise KeyFormatError(f"{source} is a {_describe(key)} key, expected X25519")
    return key


def load_private_key(
    pem: bytes, password: bytes | None = None, source: str = "private key"
) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(
            f"{source} is not a readable PEM private key (wrong file, or wrong/missing "
            "passphrase)"
        ) from exc
    if not isinstance(key, X25519PrivateKey):
        raise KeyFormatError(f"{source} is a {_describe(key)} key, expected X25519")
    return key


def read_public_key(path: Path) -> X25519PublicKey:
    return load_public_key(path.read_bytes(), source=str(path))


def read_private_key(path: Path, password: bytes | None = None) -> X25519PrivateKey:
    return load_private_key(path.read_bytes(), password, source=str(path))


@dataclass(frozen=True)
class KeyPairFiles:
    private: Path
    public: Path
    fingerprint: bytes


def keygen(out_dir: Path, password: bytes | None = None) -> KeyPairFiles:
    """Write private.pem (0600, for the auditor) and public.pem (for the Secret).

    Refuses to overwrite: replacing an auditor's private key would make every
    recording made for it unreadable.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / "private.pem", out_dir / "public.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; refusing to overwrite a key")
    key = X25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL with mode 0600 at creation: the private key is never readable by
    # others, not even for the instant a chmod after writing would leave open.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(public_pem)
    return KeyPairFiles(private_path, public_path, fingerprint(key.public_key()))
