"""The capture configuration for a session: its spec plus the mounted credentials (pure)."""

from __future__ import annotations

from pathlib import Path

from lucid_common import contract
from lucid_common.api import RecordingSessionSpec, TlsMode
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig
from lucid_recorder.rdp.events import TlsMode as CaptureTlsMode


def capture_config(spec: RecordingSessionSpec, username: str, password: str,
                   ca_dir: Path = Path(contract.RDP_CA_DIR)) -> CaptureConfig:
    target, desktop = spec.target, spec.recording.desktop
    tls = target.tls
    if tls.mode is TlsMode.FINGERPRINT:
        trust = TlsConfig(CaptureTlsMode.FINGERPRINT, fingerprint_sha256=tls.fingerprint_sha256)
    elif tls.mode is TlsMode.INSECURE:
        trust = TlsConfig(CaptureTlsMode.INSECURE)
    else:
        ca_file = ca_dir / tls.ca_secret_ref.key if tls.ca_secret_ref is not None else None
        trust = TlsConfig(CaptureTlsMode.VERIFY, ca_file=ca_file)
    return CaptureConfig(
        host=target.host, port=target.port, username=username, password=password,
        domain=target.domain or "", width=desktop.width, height=desktop.height,
        color_depth=desktop.color_depth, tls=trust, idle_seconds=idle_seconds(spec),
    )


def idle_seconds(spec: RecordingSessionSpec) -> float | None:
    """A held frame is written after one frame interval of quiet on the screen."""
    interval = spec.recording.frame_interval_ns
    return interval / 1e9 if interval is not None else None
