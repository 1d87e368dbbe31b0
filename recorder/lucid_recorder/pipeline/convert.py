"""Capture events → recording-format records (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable

from lucid_recorder import format as fmt
from lucid_recorder.rdp import events as ev


def to_records(event: ev.Event, session_ns: Callable[[int], int]) -> list[fmt.Record]:
    """The records one capture event becomes; connection bookkeeping becomes markers.

    `session_ns` maps the capture's monotonic timestamps onto the recording's timeline.
    """
    match event:
        case ev.Rect(x=x, y=y, w=w, h=h, rgb=rgb):
            return [fmt.Rect(x, y, w, h, rgb)]
        case ev.Pointer(x=x, y=y):
            return [fmt.Pointer(x, y)]
        case ev.PointerShape(kind=ev.PointerKind.HIDDEN):
            return [fmt.PointerShape(0, 0, 0, 0, b"")]
        case ev.PointerShape(kind=ev.PointerKind.DEFAULT):
            return [fmt.PointerDefault()]
        case ev.PointerShape(width=w, height=h, hotspot_x=hx, hotspot_y=hy, rgba=rgba):
            return [fmt.PointerShape(w, h, hx, hy, rgba)]
        case ev.DesktopResize(w=w, h=h):
            return [fmt.DesktopResize(w, h)]
        case ev.Gap(start_ns=start, end_ns=end, reason=reason):
            return [fmt.Gap(session_ns(start), session_ns(end), reason[:200])]
        case ev.Connected() | ev.Disconnected() | ev.LogonConfirmed() | ev.Idle():
            return []
    raise TypeError(f"unknown capture event {type(event).__name__}")


def start_detail(connected: ev.Connected) -> str:
    """What the Start marker records about the connection: how the server was trusted."""
    return json.dumps({
        "bpp": connected.bpp,
        "tlsMode": connected.tls_mode.value,
        "serverCertSha256": connected.server_cert_sha256,
    }, sort_keys=True)
