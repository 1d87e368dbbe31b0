"""Capture the xrdp server bytes that tests/unit/test_rdp_compat.py replays.

Run once against the local desktop (xrdp 0.9.21 + Xvnc), from the repo root:

    .venv/bin/python tests/data/rdp/make_fixtures.py

Each file holds records of server-to-client bytes: a kind byte (b"X": an
X.224 payload read during the connection sequence, b"S": the user data of an
MCS Send Data Indication on the I/O channel, b"F": a fast-path output PDU),
a 4-byte big-endian length, then the bytes. README.md lists what each file
is for. Only server bytes are kept: nothing the client sent, so no
credential, is ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from aardwolf.protocol.compression import BulkCompressionType
from aardwolf.protocol.T125.infopacket import INFO_FLAG, TS_INFO_PACKET

from lucid_devstack.desktop import Desktop
from lucid_recorder.rdp import wire
from lucid_recorder.rdp.capture import MonotonicClock
from lucid_recorder.rdp.compat import CompatRDPConnection
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig
from lucid_recorder.rdp.events import Event, TlsMode

HERE = Path(__file__).resolve().parent
Record = tuple[bytes, bytes]


def write_records(path: Path, records: list[Record]) -> None:
    with path.open("wb") as fh:
        for kind, data in records:
            fh.write(kind + struct.pack(">I", len(data)) + data)
    print(f"{path.name}: {len(records)} records, {path.stat().st_size} bytes")


class Tapping(CompatRDPConnection):
    """Records server bytes; optionally without autologon, or with bulk compression offered."""

    autologon = True
    bulk = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.records: list[Record] = []
        self.wire_tap = self._tap
        if self.bulk:
            self.iosettings.bulk_compression_max_type = BulkCompressionType.RDP61
            self.bulk_decompressor = _Advertise()  # only its max type is read

            async def record_only(_data: bytes) -> None:
                return None  # compressed data is recorded, not decoded

            self.updates.io_data = record_only  # type: ignore[method-assign]

    def _tap(self, kind: str, data: bytes) -> None:
        if kind in ("slow", "fast"):
            self.records.append((b"S" if kind == "slow" else b"F", bytes(data)))

    async def _open_tcp(self) -> None:
        await super()._open_tcp()
        read = self._x224net.read

        async def tapped_read() -> object:
            packet = await read()
            if packet is not None and hasattr(packet, "data"):  # not the Connection Confirm
                self.records.append((b"X", bytes(packet.data)))
            return packet

        self._x224net.read = tapped_read  # type: ignore[method-assign]

    async def handle_out_data(self, dataobj: object, *args: object) -> tuple[object, object]:
        if not self.autologon and isinstance(dataobj, TS_INFO_PACKET):
            # The Info PDU as aardwolf 0.2.16 sends it: no INFO_AUTOLOGON.
            payload = args[0].to_bytes() + dataobj.to_bytes()  # type: ignore[attr-defined]
            assert not dataobj.flags & INFO_FLAG.AUTOLOGON
            await self._send(args[3], payload)  # type: ignore[arg-type]
            return True, None
        return await super().handle_out_data(dataobj, *args)  # type: ignore[arg-type]


class _Advertise:
    max_compression_type = BulkCompressionType.RDP61


async def session(desktop: Desktop, depth: int, seconds: float,
                  connection_class: type[Tapping] = Tapping,
                  during: Callable[[], None] | None = None) -> list[Record]:
    config = CaptureConfig(
        host="127.0.0.1", port=desktop.rdp_port, username=desktop.username,
        password=desktop.password, color_depth=depth,
        tls=TlsConfig(mode=TlsMode.FINGERPRINT,
                      fingerprint_sha256=desktop.tls_fingerprint_sha256))
    events: asyncio.Queue[Event] = asyncio.Queue()
    connection = connection_class(config, events, MonotonicClock())
    try:
        await connection.establish()
        worker = None
        if during is not None:
            worker = threading.Thread(target=during)
            worker.start()
        await asyncio.sleep(seconds)
        if worker is not None:
            await asyncio.to_thread(worker.join)
    finally:
        await connection.close()
    return connection.records


def update_pdus(records: list[Record], depth: int) -> list[tuple[bytes, list[wire.BitmapData]]]:
    found = []
    for kind, data in records:
        if kind != b"S":
            continue
        with contextlib.suppress(Exception):
            for pdu in wire.iter_share_pdus(data):
                if pdu.pdu_type2 == wire.PDUTYPE2_UPDATE and pdu.body[:2] == b"\x01\x00":
                    rects = wire.parse_bitmap_update(pdu.body)
                    if all(r.bpp == depth for r in rects):
                        found.append((data, rects))
    return found


def padded(rect: wire.BitmapData) -> bool:
    """A padded bitmap with some content: RLE that is more than a single run."""
    return (rect.width > rect.dest_right - rect.dest_left + 1 and rect.height >= 4
            and len(rect.data) >= 100)


async def main(only: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp, Desktop(Path(tmp)) as desktop:
        if only:
            await {"24": frozen_24, "login": login_screen}[only](desktop)
            return
        # 32 bpp, with typing and window moves: connection sequence, Demand
        # Active, finalization, and bitmaps whose width is padded.
        records = await session(desktop, 32, 6, during=lambda: desktop.run_workload(4))
        write_records(HERE / "xrdp_connect_32.bin",
                      [r for r in records if r[0] == b"X"]
                      + [r for r in records if r[0] == b"S"][:7])
        smallest = min((d for d, rects in update_pdus(records, 32) if any(map(padded, rects))),
                       key=len)
        write_records(HERE / "xrdp_update_padded_32.bin", [(b"S", smallest)])
        write_records(HERE / "xrdp_pointers_32.bin", [r for r in records if r[0] == b"F"][:4])
        # 16 bpp: interleaved RLE with padded widths.
        records = await session(desktop, 16, 6, during=lambda: desktop.run_workload(4))
        smallest = min((d for d, rects in update_pdus(records, 16) if any(map(padded, rects))),
                       key=len)
        write_records(HERE / "xrdp_update_padded_16.bin", [(b"S", smallest)])
        # No INFO_AUTOLOGON: xrdp's login screen, whose teal background
        # (0x009CB5) shows which way red and blue go.
        await login_screen(desktop)
        # Bulk compression offered (RDP 6.1): every packet up to and including
        # the first compressed slow-path Data PDU, in order, as the
        # decompressor's history depends on all of them.
        bulk = type("Bulk", (Tapping,), {"bulk": True})
        records = await session(desktop, 32, 3, bulk)
        kept: list[Record] = []
        for kind, data in records:
            if kind == b"X":
                continue
            kept.append((kind, data))
            if (kind == b"S" and len(data) >= 18 and struct.unpack_from("<H", data)[0] == len(data)
                    and data[2] & 0x0F == wire.PDUTYPE_DATA and data[15] & 0x20):
                break  # generalCompressedType has PACKET_COMPRESSED
        write_records(HERE / "xrdp_bulk_rdp61.bin", kept)
        await frozen_24(desktop)


async def login_screen(desktop: Desktop) -> None:
    """No INFO_AUTOLOGON: xrdp's login screen. Keep an update painting its background."""
    no_autologon = type("NoAutologon", (Tapping,), {"autologon": False})
    records = await session(desktop, 32, 3, no_autologon)
    background = next(data for data, rects in update_pdus(records, 32)
                      if any(r.dest_left == 0 and r.dest_right == desktop.width - 1
                             for r in rects))
    write_records(HERE / "xrdp_login_screen_32.bin", [(b"S", background)])


async def frozen_24(desktop: Desktop) -> None:
    """24 bpp with the screen frozen: a bitmap update and the screenshot pixels it must equal."""
    xclock = desktop.process_groups()["xclock"]
    os.killpg(xclock, signal.SIGSTOP)
    try:
        await asyncio.sleep(1.5)
        records = await session(desktop, 24, 3)
        shot = desktop.screenshot_rgb()
    finally:
        os.killpg(xclock, signal.SIGCONT)
    # xrdp paints its own (black) screen first, then the desktop it gets
    # from Xvnc: keep the smallest update that draws part of the xterm.
    tx, ty, tw, th = desktop.window_geometry("xterm")

    def draws_xterm(rects: list[wire.BitmapData]) -> bool:
        return any(r.dest_left < tx + tw and r.dest_right >= tx and r.dest_top < ty + th
                   and r.dest_bottom >= ty for r in rects)

    data, rects = min(((d, rs) for d, rs in update_pdus(records, 24)[1:] if draws_xterm(rs)),
                      key=lambda item: len(item[0]))
    write_records(HERE / "xrdp_update_24.bin", [(b"S", data)])
    left = min(r.dest_left for r in rects)
    top = min(r.dest_top for r in rects)
    box = (left, top, max(r.dest_right for r in rects) + 1,
           max(r.dest_bottom for r in rects) + 1)
    # The screen under those rectangles, as the test's expected pixels.
    shot.crop(box).save(HERE / f"xrdp_update_24_at_{left}_{top}.png", optimize=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
