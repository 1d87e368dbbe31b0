"""How the operator trusts a session's object store: the CA of its spec, and plain words
for a handshake that failed.

Every client the operator opens to a session's store (the bucket check, STS AssumeRole,
the resume point, seals) is built by `pool`, with the PEM bundle of
storage.tls.caSecretRef held in memory (urllib3's ca_cert_data): no temporary file, so
the operator's read-only root filesystem is no obstacle. Pure apart from `spec_ca`,
which reads one Secret.
"""

from __future__ import annotations

import base64
import binascii

import urllib3

from lucid_common.api import RecordingSessionSpec
from lucid_common.api.spec import CaSecretRef
from lucid_common.tls import handshake_failure, pem_certificates, untrusted_certificate
from lucid_operator.kube import Kube

UNTRUSTED = "StorageCertificateUntrusted"
UNREACHABLE = "StorageUnreachable"


class StorageProblem(Exception):
    """A reason (for a condition) and a message that names Secrets, never their content."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ca_source(ref: CaSecretRef) -> str:
    return f'Secret "{ref.name}" key "{ref.key}" (storage.tls.caSecretRef)'


def ca_bundle(value: str | None, ref: CaSecretRef) -> str:
    """The PEM text of a Secret's base64 value (None: the key is absent), checked to hold
    at least one certificate, so a wrong file is named here and not as a handshake error."""
    if value is None:
        raise StorageProblem("SecretKeyMissing", f'Secret "{ref.name}" has no key "{ref.key}" '
                             "(storage.tls.caSecretRef)")
    try:
        return pem_certificates(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise StorageProblem("StorageCAInvalid", f"{ca_source(ref)} holds no PEM "
                             "certificate: put the CA bundle there in PEM form "
                             "(-----BEGIN CERTIFICATE-----)") from exc


def spec_ca(kube: Kube, namespace: str, spec: RecordingSessionSpec) -> str | None:
    """The CA bundle the session trusts its store with; None for the system's roots."""
    tls = spec.storage.tls
    ref = tls.ca_secret_ref
    if not tls.enabled or ref is None:
        return None
    data = kube.read_secret(namespace, ref.name)
    if data is None:
        raise StorageProblem("SecretNotFound", f'Secret "{ref.name}" not found '
                             "(storage.tls.caSecretRef)")
    return ca_bundle(data.get(ref.key), ref)


def pool(ca_pem: str | None, insecure_skip_verify: bool, *, connect: float, read: float,
         maxsize: int = 1) -> urllib3.PoolManager:
    """Bounded, never retried by urllib3 (the callers retry), verifying against `ca_pem`
    when given, else the system's roots."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect, read=read), retries=False, maxsize=maxsize,
        cert_reqs="CERT_NONE" if insecure_skip_verify else "CERT_REQUIRED",
        ca_cert_data=ca_pem)


def failure(exc: BaseException) -> tuple[str, str]:
    """(reason, what happened) for an error on the way to the store, e.g.
    ("StorageCertificateUntrusted", "TLS certificate not trusted (certificate verify
    failed: unable to get local issuer certificate)") or ("StorageUnreachable",
    "unreachable (ConnectTimeoutError)")."""
    untrusted = untrusted_certificate(exc)
    if untrusted is not None:
        return UNTRUSTED, f"TLS certificate not trusted ({untrusted})"
    handshake = handshake_failure(exc)
    if handshake is not None:
        return UNREACHABLE, f"TLS handshake failed ({handshake})"
    return UNREACHABLE, f"unreachable ({type(exc).__name__})"


def trusted_by(spec: RecordingSessionSpec) -> str:
    ref = spec.storage.tls.ca_secret_ref
    return (f"the CA bundle in {ca_source(ref)}" if ref is not None
            else "the system's certificate authorities (a private CA goes in "
                 "storage.tls.caSecretRef)")


def transport_problem(exc: BaseException, spec: RecordingSessionSpec) -> StorageProblem:
    """The condition for an error on the way to the session's store."""
    reason, text = failure(exc)
    endpoint = spec.storage.endpoint
    if reason == UNTRUSTED:
        return StorageProblem(reason, f"object store {endpoint}: {text}; it was checked "
                                      f"against {trusted_by(spec)}")
    return StorageProblem(reason, f"object store {endpoint}: {text}")
