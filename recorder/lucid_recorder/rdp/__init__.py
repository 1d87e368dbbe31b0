"""RDP capture: connect to a target as a client and yield every screen update.

    async with contextlib.aclosing(capture(config)) as stream:
        async for event in stream:
            ...

See capture.py for the stream, compat.py for what it changes in aardwolf.
"""

from lucid_recorder.rdp.capture import (
    Backoff,
    MonotonicClock,
    capture,
    capture_with_reconnect,
)
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig, normalize_fingerprint
from lucid_recorder.rdp.errors import (
    AuthenticationError,
    BitmapDecodeError,
    CaptureError,
    ConnectError,
    ProtocolError,
    StepTimeoutError,
    TlsVerificationError,
    UnsupportedAardwolfError,
)
from lucid_recorder.rdp.events import (
    Connected,
    DesktopResize,
    Disconnected,
    Event,
    Gap,
    Idle,
    LogonConfirmed,
    Pointer,
    PointerKind,
    PointerShape,
    Rect,
    TlsMode,
)

__all__ = [
    "AuthenticationError",
    "Backoff",
    "BitmapDecodeError",
    "CaptureConfig",
    "CaptureError",
    "ConnectError",
    "Connected",
    "DesktopResize",
    "Disconnected",
    "Event",
    "Gap",
    "Idle",
    "LogonConfirmed",
    "MonotonicClock",
    "Pointer",
    "PointerKind",
    "PointerShape",
    "ProtocolError",
    "Rect",
    "StepTimeoutError",
    "TlsConfig",
    "TlsMode",
    "TlsVerificationError",
    "UnsupportedAardwolfError",
    "capture",
    "capture_with_reconnect",
    "normalize_fingerprint",
]
