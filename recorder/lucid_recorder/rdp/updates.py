"""An active session's I/O channel and fast-path PDUs, decoded into events.

Fix 7 is here: aardwolf 0.2.16 turns only fast-path bitmap updates into
video; xrdp sends every bitmap as a slow-path Graphics Update PDU
(updateType BITMAP), which aardwolf leaves in a queue nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable

from aardwolf.protocol.fastpath import (
    FASTPATH_OUTPUT_COMPRESSION,
    FASTPATH_SEC,
    FASTPATH_UPDATETYPE,
    TS_FP_UPDATE_PDU,
)
from aardwolf.protocol.fastpath.reassembly import FastPathFragmentReassembler

from lucid_recorder import native
from lucid_recorder.rdp import wire
from lucid_recorder.rdp.bitmap import decode_bitmap
from lucid_recorder.rdp.errors import AuthenticationError, BitmapDecodeError, ProtocolError
from lucid_recorder.rdp.events import Event, Rect
from lucid_recorder.rdp.pointer import FASTPATH_POINTER_CODES, PointerTracker

log = logging.getLogger(__name__)

# Set Error Info codes ([MS-RDPBCGR] 2.2.5.1.1) worth a readable disconnect reason.
ERRINFO_NAMES = {
    0x00000001: "the session was disconnected by an administrator",
    0x00000002: "the session was logged off by an administrator",
    0x00000003: "the server ended an idle session",
    0x00000004: "the server ended the session: logon time limit reached",
    0x00000005: "another user connected to the session",
    0x0000000C: "the user logged off",
}
# How much wider and taller than the desktop an encoded bitmap may be:
# servers pad bitmaps (xrdp to 64 x 64 tiles), never by a whole tile more.
BITMAP_PADDING = 64
# Decoded pixels one PDU may hold before its events are queued: a few bytes of RLE decode
# to a whole desktop, and one PDU holds thousands of rectangles, so a PDU's events are
# queued in several lists when they exceed this (and the queue's byte bound holds back).
PENDING_BYTES = 4 * 2**20


class FastPathPacket(bytes):
    """A fast-path output PDU parked in the I/O queue, so that it keeps its place in order."""


class UpdateDecoder:
    """Decodes PDUs of an active session into events for `events`, stamped by `clock`.

    The events of one PDU go into the queue as one list: a queue item per rectangle cost
    more CPU than decoding it on a busy desktop.

    `reactivate` answers a Demand Active PDU that arrives in an active
    session (Deactivation-Reactivation, a desktop resize).
    """

    def __init__(self, events: asyncio.Queue[list[Event]], clock: Callable[[], int],
                 max_request_size: int,
                 reactivate: Callable[[wire.DemandActive], Awaitable[None]]) -> None:
        self.events = events
        self.clock = clock
        self.reactivate = reactivate
        self.stats = {"bitmap_updates": 0, "rects": 0, "bitmap_bytes": 0, "pointer_updates": 0}
        self.error_info = 0
        self.logged_on = asyncio.Event()  # set by a Save Session Info PDU
        self.font_map = asyncio.Event()  # set by the Font Map PDU that ends the sequence
        # (width, height) of the active desktop, set by the capability exchange.
        self.desktop = (wire.MAX_DESKTOP_SIDE, wire.MAX_DESKTOP_SIDE)
        self._pointer = PointerTracker()
        self._reassembler = FastPathFragmentReassembler(max_request_size)
        self._pending: list[Event] = []  # this PDU's events, not yet queued
        self._pending_bytes = 0

    def error_info_text(self) -> str:
        if not self.error_info:
            return ""
        name = ERRINFO_NAMES.get(self.error_info)
        return f"server error info {self.error_info:#010x}" + (f" ({name})" if name else "")

    async def io_data(self, data: bytes) -> None:
        """One PDU; what it decoded to is queued even when a later part of it fails."""
        try:
            if isinstance(data, FastPathPacket):
                await self.fastpath(data)
                return
            for pdu in wire.iter_share_pdus(data):
                await self.share_pdu(pdu)
        finally:
            await self.flush()

    async def flush(self) -> None:
        """Queue the events decoded so far (one item), ahead of any the connection queues."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._pending_bytes = 0
            await self.events.put(batch)

    async def share_pdu(self, pdu: wire.SharePdu) -> None:
        """One slow-path PDU; Graphics Updates (fix 7) become Rect events."""
        if pdu.pdu_type == wire.PDUTYPE_DEMANDACTIVE:
            await self.flush()  # the resize the reactivation queues comes after them
            await self.reactivate(wire.parse_demand_active(pdu.body))
        elif pdu.pdu_type == wire.PDUTYPE_DATA and pdu.pdu_type2 == wire.PDUTYPE2_UPDATE:
            if len(pdu.body) < 2:
                raise ProtocolError("truncated Graphics Update PDU")
            await self.graphics_update(struct.unpack_from("<H", pdu.body)[0], pdu.body)
        elif pdu.pdu_type == wire.PDUTYPE_DATA and pdu.pdu_type2 == wire.PDUTYPE2_SAVE_SESSION_INFO:
            self.session_info(pdu.body)
        elif pdu.pdu_type == wire.PDUTYPE_DATA and pdu.pdu_type2 == wire.PDUTYPE2_POINTER:
            self.stats["pointer_updates"] += 1
            event = self._pointer.slow_path(self.clock(), pdu.body)
            if event is not None:
                self._pending.append(event)
        else:
            self.note_pdu(pdu)

    async def graphics_update(self, update_type: int, data: bytes) -> None:
        if update_type == wire.UPDATETYPE_BITMAP:
            core = native.core
            if core is not None:
                # One native call for the whole update instead of a parse, a bounds
                # check and a decode per rectangle; None when it leaves the update to
                # the reference below (the same rectangles, or the reference's error).
                width, height = self.desktop
                fused = core.bitmap_update(data, width, height, BITMAP_PADDING,
                                           PENDING_BYTES)
                if fused is not None:
                    self._add_rects(*fused)
                    return
            bitmaps = wire.parse_bitmap_update(data)
            self.stats["bitmap_updates"] += 1
            for bitmap in bitmaps:
                self.stats["bitmap_bytes"] += len(bitmap.data)
                self.stats["rects"] += 1
                self.check_bounds(bitmap)
                rect = decode_bitmap(bitmap)
                self._pending.append(Rect(self.clock(), rect.x, rect.y, rect.w, rect.h,
                                          rect.rgb))
                self._pending_bytes += len(rect.rgb)
                if self._pending_bytes >= PENDING_BYTES:
                    await self.flush()
        elif update_type in (wire.UPDATETYPE_SYNCHRONIZE, wire.UPDATETYPE_PALETTE):
            log.debug("ignoring graphics update type %s", update_type)
        else:
            # Drawing orders were not advertised (orderSupport is all zero):
            # one would change pixels this client cannot reproduce.
            raise ProtocolError(f"server sent graphics update type {update_type}, "
                                "which was not negotiated")

    def _add_rects(self, rects: list[tuple[int, int, int, int, bytes]],
                   bitmap_bytes: int) -> None:
        """What the native bitmap_update decoded (at most PENDING_BYTES of pixels): the
        stats and events of the loop in graphics_update, one timestamp for one call."""
        stats = self.stats
        stats["bitmap_updates"] += 1
        stats["rects"] += len(rects)
        stats["bitmap_bytes"] += bitmap_bytes
        t_ns = self.clock()
        self._pending.extend(Rect(t_ns, x, y, w, h, rgb) for x, y, w, h, rgb in rects)
        self._pending_bytes += sum(w * h * 3 for _x, _y, w, h, _rgb in rects)

    def check_bounds(self, bitmap: wire.BitmapData) -> None:
        """Before decoding: a rectangle off the desktop, or a bitmap far larger than it.

        Decoders allocate the bitmap's own width x height, which the server
        writes: 65535 x 65535 in a few bytes of RLE would ask for 16 GiB.
        """
        width, height = self.desktop
        if (bitmap.dest_right >= width or bitmap.dest_bottom >= height
                or bitmap.width > width + BITMAP_PADDING
                or bitmap.height > height + BITMAP_PADDING):
            raise BitmapDecodeError(
                f"bitmap {bitmap.width}x{bitmap.height} for ({bitmap.dest_left},"
                f"{bitmap.dest_top})-({bitmap.dest_right},{bitmap.dest_bottom}) does not fit "
                f"the {width}x{height} desktop")

    async def fastpath(self, packet: bytes) -> None:
        pdu = TS_FP_UPDATE_PDU.from_bytes(packet)
        if FASTPATH_SEC.ENCRYPTED in pdu.flags:
            raise ProtocolError("encrypted fast-path output, but no RDP encryption was agreed")
        for raw in pdu.fpOutputUpdates:
            if raw.compression == FASTPATH_OUTPUT_COMPRESSION.USED:
                raise ProtocolError("bulk-compressed fast-path update; none was negotiated")
            update = self._reassembler.feed(raw)
            if update is None:
                continue
            code = int(update.updateCode)
            if code == FASTPATH_UPDATETYPE.BITMAP:
                await self.graphics_update(wire.UPDATETYPE_BITMAP, update.updateData)
            elif code in FASTPATH_POINTER_CODES:
                self.stats["pointer_updates"] += 1
                event = self._pointer.fast_path(self.clock(), code, update.updateData)
                if event is not None:
                    self._pending.append(event)
            elif code in (FASTPATH_UPDATETYPE.SYNCHRONIZE, FASTPATH_UPDATETYPE.PALETTE):
                log.debug("ignoring fast-path update %s", code)
            else:
                raise ProtocolError(f"server sent fast-path update {code}, "
                                    "which was not negotiated")

    def session_info(self, body: bytes) -> None:
        """Save Session Info (2.2.10.1): a logon, or (with INFO_LOGONERRORS) why it failed."""
        info = wire.parse_session_info(body)
        if info.logon_error is None:
            if info.logged_on:
                self.logged_on.set()
            return
        if info.logon_error in wire.LOGON_FAILED_CREDENTIALS:
            raise AuthenticationError(
                f"the server refused the logon ({wire.LOGON_ERROR_NAMES[info.logon_error]})")
        log.info("server logon notification %#x, data %#x", info.logon_error, info.logon_data)

    def note_pdu(self, pdu: wire.SharePdu) -> None:
        """PDUs that change no pixels; Set Error Info is kept for the disconnect reason."""
        if pdu.pdu_type == wire.PDUTYPE_DATA and pdu.pdu_type2 == wire.PDUTYPE2_FONTMAP:
            self.font_map.set()
        elif pdu.pdu_type == wire.PDUTYPE_DATA and pdu.pdu_type2 == wire.PDUTYPE2_SET_ERROR_INFO:
            if len(pdu.body) >= 4:
                self.error_info = struct.unpack_from("<I", pdu.body)[0] or self.error_info
        elif pdu.pdu_type == wire.PDUTYPE_SERVER_REDIR:
            raise ProtocolError("the server redirects to another host, which is not followed")
        else:
            log.debug("ignoring share PDU type %s/%s", pdu.pdu_type, pdu.pdu_type2)
