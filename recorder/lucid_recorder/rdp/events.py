"""Events yielded by the capture source.

Every event carries `t_ns`, a `time.monotonic_ns()` reading taken when the
event was decoded; within one capture the values never decrease.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class TlsMode(StrEnum):
    """How the server's certificate is checked; recorded in `Connected`."""

    # Same spelling as RecordingSession's spec.target.tls.mode.
    VERIFY = "Verify"            # chain to a CA bundle (or system roots) + host name
    FINGERPRINT = "Fingerprint"  # SHA-256 of the DER certificate must match a pin
    INSECURE = "Insecure"        # no check at all: an explicit, recorded opt-in


@dataclass(frozen=True, slots=True)
class Connected:
    t_ns: int
    width: int
    height: int
    bpp: int
    server_cert_sha256: str
    tls_mode: TlsMode
    # The server checked the credentials before the session started (NLA / CredSSP).
    credentials_checked: bool = False


@dataclass(frozen=True, slots=True)
class Rect:
    """A screen region replaced by exact pixels: RGB24, row-major, `w * h * 3` bytes."""

    t_ns: int
    x: int
    y: int
    w: int
    h: int
    rgb: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DesktopResize:
    t_ns: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Pointer:
    """The pointer moved to (x, y), as the server reported it."""

    t_ns: int
    x: int
    y: int


class PointerKind(StrEnum):
    BITMAP = "bitmap"    # rgba holds the shape
    HIDDEN = "hidden"    # no pointer is shown
    DEFAULT = "default"  # the client's default arrow


@dataclass(frozen=True, slots=True)
class PointerShape:
    """A new pointer image: RGBA, row-major, `width * height * 4` bytes (empty unless BITMAP)."""

    t_ns: int
    kind: PointerKind
    hotspot_x: int = 0
    hotspot_y: int = 0
    width: int = 0
    height: int = 0
    rgba: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class LogonConfirmed:
    """The server confirmed the user's logon (Save Session Info PDU; Windows, not xrdp)."""

    t_ns: int


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing arrived for CaptureConfig.idle_seconds: what is held for a frame can go."""

    t_ns: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    t_ns: int
    reason: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Nothing was captured between start_ns and end_ns (a dropped connection)."""

    t_ns: int
    start_ns: int
    end_ns: int
    reason: str


Event = (Connected | Rect | DesktopResize | Pointer | PointerShape | LogonConfirmed
         | Idle | Disconnected | Gap)
