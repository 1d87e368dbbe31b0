"""Typed errors of the RDP capture source; every one says what failed and where."""

from __future__ import annotations


class CaptureError(Exception):
    """Base class: anything that ends or prevents an RDP capture."""


class ConnectError(CaptureError):
    """The target could not be reached: refused, unreachable, or no answer in time."""


class TlsVerificationError(CaptureError):
    """The server's TLS certificate failed the configured verification."""


class AuthenticationError(CaptureError):
    """The server refused the credentials (detected where the protocol shows it)."""


class ProtocolError(CaptureError):
    """The server sent something this client cannot follow, or broke the sequence."""


class StepTimeoutError(CaptureError):
    """One network step of the connection sequence got no answer in time."""


class UnsupportedAardwolfError(CaptureError):
    """The installed aardwolf is not the version the compatibility layer was written for."""


class BitmapDecodeError(ProtocolError):
    """A bitmap update could not be decoded into exact pixels."""
