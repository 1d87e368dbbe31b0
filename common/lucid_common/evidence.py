"""The operator's seal: a countersignature of what it saw of a recording (docs/storage.md).

Shared by the operator, which signs seals with its own ed25519 key, and the auditors'
`lucid-seal verify`, which checks them with the operator's public key. The seal names the
session (namespace, name, UID), the recorder's per-run signing keys, how many chunks were
stored and the hash of the last one (the chain head: it pins every chunk before it through
the hash chain), and whether the session had ended. A bucket writer can neither make one
nor change one unseen, and a later seal always has a higher `counter`, so a seal swapped
for an older one shows against a newer copy (the CR status, or an exported anchor).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lucid_common.api.status import Seal, SealSession, SigningKey

SEAL_FORMAT = "lucid.seal/v1"
_SEAL_LABEL = b"lucid/v1/operator-seal\x00"
# Where the operator writes seals, below the session's root in the bucket: one object per
# seal, never overwritten, so retention keeps every one of them.
SEALS_DIR = "seals/"


class EvidenceKeyError(ValueError):
    """A key file or Secret that is not what it must be."""


def seal_key(root: str, counter: int) -> str:
    return f"{root}{SEALS_DIR}{counter:08d}.json"


def key_id(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: names the operator key in seals and reports."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()


def raw_public(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes_raw()).decode()


def public_from_raw(value: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(value, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise EvidenceKeyError("not a base64 raw ed25519 public key") from exc


def signing_bytes(seal: Seal) -> bytes:
    """What the operator signs: the seal without its signature, as canonical JSON."""
    body = seal.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"signature"})
    return _SEAL_LABEL + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                    ensure_ascii=True).encode()


def sign_seal(seal: Seal, key: Ed25519PrivateKey) -> Seal:
    unsigned = seal.model_copy(update={"operator_key_id": key_id(key.public_key()),
                                       "signature": None})
    signature = key.sign(signing_bytes(unsigned))
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})


def seal_signed_by(seal: Seal, public: Ed25519PublicKey) -> bool:
    """Whether `public` signed exactly this seal."""
    if not seal.signature or seal.operator_key_id != key_id(public):
        return False
    try:
        public.verify(base64.b64decode(seal.signature, validate=True), signing_bytes(seal))
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_seal(data: bytes | str | dict[str, Any]) -> Seal:
    """A seal from JSON (an object in the bucket, an exported anchor) or a dict."""
    if isinstance(data, dict):
        return Seal.model_validate(data)
    return Seal.model_validate_json(data)


def seal_json(seal: Seal) -> bytes:
    return seal.model_dump_json(by_alias=True, exclude_none=True, indent=1).encode() + b"\n"


# -- operator key files ----------------------------------------------------------------


def new_operator_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def load_operator_private(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceKeyError(f"{source} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceKeyError(f"{source} is not an ed25519 key")
    return key


def load_operator_public(pem: bytes, source: str) -> Ed25519PublicKey:
    """The operator's public key, as the auditor got it (ConfigMap, chart output)."""
    if b"PRIVATE KEY" in pem:
        raise EvidenceKeyError(f"{source} holds a PRIVATE key; give the operator's public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise EvidenceKeyError(f"{source} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceKeyError(f"{source} is not an ed25519 public key (the operator's key)")
    return key


__all__ = [
    "SEALS_DIR",
    "SEAL_FORMAT",
    "EvidenceKeyError",
    "Seal",
    "SealSession",
    "SigningKey",
    "key_id",
    "load_operator_private",
    "load_operator_public",
    "new_operator_key",
    "parse_seal",
    "private_pem",
    "public_from_raw",
    "public_pem",
    "raw_public",
    "seal_json",
    "seal_key",
    "seal_signed_by",
    "sign_seal",
    "signing_bytes",
]
