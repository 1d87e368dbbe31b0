"""What to connect to and how: the capture source's whole configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lucid_recorder.rdp.events import TlsMode

COLOR_DEPTHS = (16, 24, 32)
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(value: str) -> str:
    """64 lower-case hex digits from a SHA-256 pin written with or without colons, any case."""
    digits = value.strip().replace(":", "").lower()
    if not _FINGERPRINT.match(digits):
        raise ValueError(
            "fingerprint_sha256 must be 64 hex digits, optionally as colon-separated pairs"
        )
    return digits


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """How the server certificate is trusted. Insecure must be chosen explicitly."""

    mode: TlsMode = TlsMode.VERIFY
    # Verify: PEM bundle of trusted CAs; None means the system's roots.
    ca_file: Path | None = None
    # Verify: the name the certificate must carry; None means CaptureConfig.host.
    server_name: str | None = None
    # Fingerprint: SHA-256 of the DER certificate.
    fingerprint_sha256: str | None = None

    def __post_init__(self) -> None:
        mode = TlsMode(self.mode)
        object.__setattr__(self, "mode", mode)
        if mode is TlsMode.FINGERPRINT:
            if self.fingerprint_sha256 is None:
                raise ValueError("TLS mode Fingerprint needs fingerprint_sha256")
            object.__setattr__(
                self, "fingerprint_sha256", normalize_fingerprint(self.fingerprint_sha256)
            )
        elif self.fingerprint_sha256 is not None:
            raise ValueError(f"fingerprint_sha256 is only used with mode Fingerprint, not {mode}")
        if mode is not TlsMode.VERIFY and (self.ca_file is not None or self.server_name):
            raise ValueError(f"ca_file and server_name are only used with mode Verify, not {mode}")


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """One RDP target. The password never appears in repr() or logs."""

    host: str
    port: int = 3389
    username: str = ""
    password: str = field(default="", repr=False)
    domain: str = ""
    width: int = 1024
    height: int = 768
    # 32 asks for a true-colour session and falls back to 24 where the server
    # lacks it; 24 and 16 ask for exactly that depth.
    color_depth: int = 32
    tls: TlsConfig = field(default_factory=TlsConfig)
    # TCP connect, and then each later network step of the connection sequence.
    connect_timeout: float = 10.0
    step_timeout: float = 20.0
    # After the connection sequence: raise AuthenticationError unless the
    # server confirms a logon (Save Session Info PDU) within this many
    # seconds. Windows confirms every logon; xrdp never does (a wrong password
    # behind xrdp only shows on its screen), so leave it None there.
    logon_timeout: float | None = None
    # After Connected: yield Idle when no update arrived for this many seconds (None:
    # never), so a consumer holding updates for a frame writes it while the screen rests.
    idle_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host is required")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, not {self.port}")
        if self.color_depth not in COLOR_DEPTHS:
            raise ValueError(f"color_depth must be one of {COLOR_DEPTHS}, not {self.color_depth}")
        if not (200 <= self.width <= 8192 and 200 <= self.height <= 8192):
            raise ValueError(f"desktop size {self.width}x{self.height} is out of range")
        for name in ("connect_timeout", "step_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.logon_timeout is not None and self.logon_timeout <= 0:
            raise ValueError("logon_timeout must be positive or None")
        if self.idle_seconds is not None and self.idle_seconds <= 0:
            raise ValueError("idle_seconds must be positive or None")
