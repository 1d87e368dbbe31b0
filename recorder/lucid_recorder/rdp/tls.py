"""TLS for the RDP connection: contexts per trust mode, and the check after the handshake.

aardwolf 0.2.16 always wraps with CERT_NONE. The capture instead builds the
context here and checks the peer before a single byte more is sent, so no
credential ever reaches a server that failed verification.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl

from lucid_recorder.rdp.config import TlsConfig
from lucid_recorder.rdp.errors import TlsVerificationError
from lucid_recorder.rdp.events import TlsMode


class HostnameContext:
    """Duck-types SSLContext.wrap_bio for asysocks, adding SNI and the name to check.

    asysocks' PacketizerSSL calls ctx.wrap_bio(incoming, outgoing, server_side=...)
    without server_hostname, which would leave OpenSSL's host name check off.
    """

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.context = context
        self.server_hostname = server_hostname

    def wrap_bio(
        self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False
    ) -> ssl.SSLObject:
        return self.context.wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=self.server_hostname
        )


def client_context(tls: TlsConfig, host: str) -> ssl.SSLContext | HostnameContext:
    """The context to hand to the TLS handshake for this trust mode."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.mode is TlsMode.VERIFY:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        if tls.ca_file is not None:
            context.load_verify_locations(cafile=str(tls.ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return HostnameContext(context, tls.server_name or host)
    # Fingerprint and Insecure: the handshake accepts any certificate;
    # Fingerprint is then enforced by verify_peer() before anything is sent.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def certificate_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def verify_peer(tls: TlsConfig, der: bytes | None) -> str:
    """Check the server certificate after the handshake; return its SHA-256 (hex)."""
    if not der:
        raise TlsVerificationError("the server presented no TLS certificate")
    digest = certificate_sha256(der)
    if tls.mode is TlsMode.FINGERPRINT:
        expected = tls.fingerprint_sha256 or ""
        if not hmac.compare_digest(digest, expected):
            raise TlsVerificationError(
                f"server certificate SHA-256 {digest} does not match the pinned {expected}"
            )
    return digest
