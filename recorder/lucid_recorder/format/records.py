"""The records a recording holds, as the capture source produces them and the decoder returns them.

Pixel payloads are exact RGB24, row-major, top-down, no padding; pointer shapes are RGBA32.
How the bytes are laid out on disk (planar, XOR against the previous frame) is the
codec's business: these classes always carry plain pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bigger than any monitor wall RDP negotiates (max 8192x8192 in MS-RDPBCGR), and a
# bound on what a malicious header can make the decoder allocate (192 MiB RGB24).
MAX_DIMENSION = 8192
# MS-RDPBCGR large pointers are at most 384x384; leave room but stay bounded.
MAX_POINTER_DIMENSION = 512
# RDP coordinates are 16-bit.
MAX_COORDINATE = 0xFFFF
MAX_REASON_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Rect:
    """A damage rectangle with its new pixels."""

    x: int
    y: int
    width: int
    height: int
    rgb: bytes


@dataclass(frozen=True, slots=True)
class Keyframe:
    """The whole framebuffer. The writer emits these; capture never does."""

    width: int
    height: int
    rgb: bytes


@dataclass(frozen=True, slots=True)
class DesktopResize:
    """The desktop changed size (the "resize" marker); the overlapping top-left area is kept."""

    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Pointer:
    """Pointer position, in desktop coordinates."""

    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PointerShape:
    """A new pointer image. width == height == 0 hides the pointer."""

    width: int
    height: int
    hotspot_x: int
    hotspot_y: int
    rgba: bytes


@dataclass(frozen=True, slots=True)
class PointerDefault:
    """The server asked for the client's default arrow (no bitmap is sent)."""


@dataclass(frozen=True, slots=True)
class Start:
    """The recording started. `detail` is free text from the capture, e.g. the negotiated colour
    depth and how the server certificate was checked, so that the recording carries it."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Stop:
    """The recording stopped on purpose; `reason` is free text for people."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Gap:
    """Nothing was captured between start_ns and end_ns (session-relative), e.g. a reconnect."""

    start_ns: int
    end_ns: int
    reason: str = ""


# Name used in the list of markers.
Resize = DesktopResize

Record = (Rect | Keyframe | DesktopResize | Pointer | PointerShape | PointerDefault | Start | Stop
          | Gap)
Marker = Start | Stop | Gap | DesktopResize


@dataclass(frozen=True, slots=True)
class TimedRecord:
    """A record and its time, in ns since the session start (monotonic clock)."""

    ts_ns: int
    record: Record
