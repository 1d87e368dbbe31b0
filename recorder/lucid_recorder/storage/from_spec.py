"""Build the sealing and storage objects from the RecordingSession spec and the pod contract."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from minio.credentials.providers import Provider

from lucid_common import contract
from lucid_common.api.spec import Compression, Encryption, Retention, Storage
from lucid_recorder.sealing.compression import Codec
from lucid_recorder.sealing.errors import KeyFormatError
from lucid_recorder.sealing.keys import load_public_key
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.storage.layout import SessionLayout
from lucid_recorder.storage.store import ObjectStore, make_client


def recipient_key(
    encryption: Encryption, key_dir: Path = Path(contract.RECIPIENT_KEY_DIR)
) -> X25519PublicKey:
    """The recipient public key the operator mounted from the Secret."""
    ref = encryption.recipient_public_key_secret_ref
    source = f"Secret {ref.name} key {ref.key}"
    path = key_dir / ref.key
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"{source} is not readable at {path}: {exc.strerror}") from exc
    return load_public_key(pem, source=source)


def codec(compression: Compression) -> tuple[Codec, int]:
    return Codec.from_name(compression.codec.value), compression.level


def object_store(
    storage: Storage,
    session: SessionIdentity,
    access_key: str = "",
    secret_key: str = "",
    ca_dir: Path = Path(contract.STORAGE_CA_DIR),
    *,
    credentials: Provider | None = None,
    retention: Retention | None = None,
) -> ObjectStore:
    """An ObjectStore for the session; call ensure_bucket(storage.create_bucket) next.

    The recorder pod passes `credentials` (its mounted Secret, re-read when rotated);
    tools and benchmarks pass a fixed key pair.
    """
    tls = storage.tls
    ref = tls.ca_secret_ref
    ca_file = ca_dir / ref.key if ref is not None else None
    client = make_client(storage.endpoint, access_key, secret_key, secure=tls.enabled,
                         ca_file=ca_file, insecure_skip_verify=tls.insecure_skip_verify,
                         credentials=credentials,
                         ca_source=(f'Secret "{ref.name}" key "{ref.key}" '
                                    "(storage.tls.caSecretRef)") if ref is not None else None)
    return ObjectStore(client, storage.bucket, SessionLayout(storage.key_prefix, session),
                       retention=retention)
