"""CA bundles and TLS failures, shared by the operator and the recorder: a bundle is
checked to hold PEM certificates before anything connects with it, and an untrusted
certificate inside a client exception is named as such, rather than "unreachable".

urllib3 keeps ssl's error in its exception's args (or, after retries, in MaxRetryError's
`reason`), not in __cause__, so every link is followed. Pure, standard library only.
"""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def pem_certificates(raw: bytes) -> str:
    """The certificates of a PEM bundle, re-encoded: ssl takes cadata text as ASCII PEM,
    and a bundle's comments may not be. ValueError when it holds no certificate."""
    certificates = x509.load_pem_x509_certificates(raw)
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None),
                  *current.args)
        todo += [c for c in linked if isinstance(c, BaseException)]
    return seen


def untrusted_certificate(exc: BaseException) -> str | None:
    """ "certificate verify failed: <why>" when the peer's certificate was refused."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message or cause.reason or '?'}"
    return None


def handshake_failure(exc: BaseException) -> str | None:
    """The ssl library's reason (e.g. WRONG_VERSION_NUMBER) for any other TLS failure."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or type(cause).__name__)
    return None
