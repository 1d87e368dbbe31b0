"""RDP wire structures that the compatibility layer writes or reads itself.

Each is a pure function of bytes, so each fix is testable on real server
bytes without a server. References are to [MS-RDPBCGR] sections.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from lucid_recorder.rdp.errors import ProtocolError

# Fix 1. MCS Erect Domain Request ([T125] 7, [MS-RDPBCGR] 2.2.1.5) in ALIGNED
# PER: choice index 1 (0x04), then subHeight and subInterval, each an
# unconstrained INTEGER as a length octet (1) and one value octet (0).
# aardwolf 0.2.16 sends 04 00 01 00 01, a zero-length subHeight followed by
# three stray octets; xrdp skips the fields, FreeRDP rejects the PDU.
ERECT_DOMAIN_REQUEST = bytes.fromhex("0401000100")

# Share Control Header pduType values (2.2.8.1.1.1.1).
PDUTYPE_DEMANDACTIVE = 0x1
PDUTYPE_CONFIRMACTIVE = 0x3
PDUTYPE_DEACTIVATEALL = 0x6
PDUTYPE_DATA = 0x7
PDUTYPE_SERVER_REDIR = 0xA
_PDU_VERSION = 0x10

# Share Data Header pduType2 values (2.2.8.1.1.1.2) the client acts on.
PDUTYPE2_UPDATE = 0x02
PDUTYPE2_CONTROL = 0x14
PDUTYPE2_POINTER = 0x1B
PDUTYPE2_SYNCHRONIZE = 0x1F
PDUTYPE2_SHUTDOWN_DENIED = 0x25
PDUTYPE2_SAVE_SESSION_INFO = 0x26
PDUTYPE2_FONTLIST = 0x27
PDUTYPE2_FONTMAP = 0x28
PDUTYPE2_SET_ERROR_INFO = 0x2F

STREAM_MED = 0x02
SHARE_CONTROL_HEADER_SIZE = 6
SHARE_DATA_HEADER_SIZE = 18
# generalCompressedType bits that mean the payload went through bulk compression.
_PACKET_COMPRESSED = 0x20

# Slow-path Graphics Update updateType values (2.2.9.1.1.3.1).
UPDATETYPE_ORDERS = 0x0
UPDATETYPE_BITMAP = 0x1
UPDATETYPE_PALETTE = 0x2
UPDATETYPE_SYNCHRONIZE = 0x3

# Bitmap Data flags (2.2.9.1.1.3.1.2.2).
BITMAP_COMPRESSION = 0x0001
NO_BITMAP_COMPRESSION_HDR = 0x0400
_COMPRESSION_HEADER_SIZE = 8

# The largest desktop side a server may choose: the recording format's limit
# (format.records.MAX_DIMENSION) and CaptureConfig's. Every buffer the
# capture allocates for pixels is bounded by the desktop, so by this.
MAX_DESKTOP_SIDE = 8192

# Capability set types (2.2.1.13.1.1.1) read from the Demand Active PDU.
CAPSTYPE_GENERAL = 0x01
CAPSTYPE_BITMAP = 0x02


def share_control_pdu(pdu_type: int, source: int, body: bytes) -> bytes:
    """A Share Control Header (totalLength = 6 + body) followed by body."""
    total = SHARE_CONTROL_HEADER_SIZE + len(body)
    return struct.pack("<HHH", total, pdu_type | _PDU_VERSION, source) + body


def share_data_pdu(
    share_id: int, source: int, pdu_type2: int, payload: bytes, stream_id: int = STREAM_MED
) -> bytes:
    """A slow-path Data PDU: Share Control + Share Data Header, then payload.

    Fix 5: totalLength counts both headers and the payload, 18 + payload;
    aardwolf 0.2.16 writes 24 + payload, and xrdp reads the 6 missing bytes
    as the start of the next PDU. uncompressedLength is payload + 4, as in the
    specification's example Synchronize PDU (4.1.14: totalLength 22,
    uncompressedLength 8 for a 4-byte payload).
    """
    total = SHARE_DATA_HEADER_SIZE + len(payload)
    header = struct.pack(
        "<HHHIBBHBBH", total, PDUTYPE_DATA | _PDU_VERSION, source, share_id,
        0, stream_id, len(payload) + 4, pdu_type2, 0, 0,
    )
    return header + payload


@dataclass(frozen=True, slots=True)
class SharePdu:
    """One slow-path PDU from the I/O channel, headers parsed, body as bytes."""

    pdu_type: int
    source: int
    body: bytes
    # Data PDUs only (pdu_type == PDUTYPE_DATA).
    share_id: int = 0
    pdu_type2: int = 0
    compressed_type: int = 0


def iter_share_pdus(data: bytes) -> Iterator[SharePdu]:
    """Share PDUs in one MCS Send Data Indication (a server may pack several)."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < SHARE_CONTROL_HEADER_SIZE:
            raise ProtocolError(f"truncated Share Control Header at offset {offset}")
        total, type_version, source = struct.unpack_from("<HHH", data, offset)
        if total == 0x8000:
            # Flow control PDUs (2.2.8.1.1.1.1) carry this marker and 8 bytes.
            offset += 8
            continue
        if total < SHARE_CONTROL_HEADER_SIZE or offset + total > len(data):
            raise ProtocolError(
                f"Share Control totalLength {total} does not fit {len(data) - offset} bytes"
            )
        pdu = data[offset:offset + total]
        pdu_type = type_version & 0x0F
        if pdu_type == PDUTYPE_DATA:
            if total < SHARE_DATA_HEADER_SIZE:
                raise ProtocolError(f"Data PDU of {total} bytes is shorter than its header")
            share_id, _pad, _stream, _ulen, pdu_type2, ctype, _clen = struct.unpack_from(
                "<IBBHBBH", pdu, SHARE_CONTROL_HEADER_SIZE
            )
            if ctype & _PACKET_COMPRESSED:
                raise ProtocolError("server sent a bulk-compressed Data PDU; none was negotiated")
            yield SharePdu(pdu_type, source, pdu[SHARE_DATA_HEADER_SIZE:], share_id,
                           pdu_type2, ctype)
        else:
            yield SharePdu(pdu_type, source, pdu[SHARE_CONTROL_HEADER_SIZE:])
        offset += total


@dataclass(frozen=True, slots=True)
class DemandActive:
    """The Demand Active PDU (2.2.1.13.1) with every capability set kept as raw bytes."""

    share_id: int
    source_descriptor: bytes
    capabilities: tuple[tuple[int, bytes], ...]
    session_id: int

    def capability(self, cap_type: int) -> bytes | None:
        for found, data in self.capabilities:
            if found == cap_type:
                return data
        return None

    @property
    def desktop(self) -> tuple[int, int, int]:
        """(bpp, width, height) the server chose, from its Bitmap Capability Set."""
        data = self.capability(CAPSTYPE_BITMAP)
        if data is None or len(data) < 12:
            raise ProtocolError("Demand Active PDU has no Bitmap Capability Set")
        bpp, _r1, _r4, _r8, width, height = struct.unpack_from("<HHHHHH", data)
        if not (1 <= width <= MAX_DESKTOP_SIDE and 1 <= height <= MAX_DESKTOP_SIDE):
            raise ProtocolError(f"the server chose a {width}x{height} desktop, outside "
                                f"1..{MAX_DESKTOP_SIDE} on each side")
        return bpp, width, height

    @property
    def general_extra_flags(self) -> int:
        data = self.capability(CAPSTYPE_GENERAL)
        if data is None or len(data) < 12:
            return 0
        return struct.unpack_from("<H", data, 10)[0]


def parse_demand_active(body: bytes) -> DemandActive:
    """Parse a Demand Active body (after the Share Control Header).

    Fix 3: capability sets are walked by their own lengths and every type is
    kept, known or not. aardwolf 0.2.16 maps each type through an enum and
    raises ValueError on one it does not list, such as the type 6 xrdp sends.
    """
    try:
        share_id, len_source, len_caps = struct.unpack_from("<IHH", body)
        offset = 8
        source = body[offset:offset + len_source]
        offset += len_source
        caps_end = offset + len_caps
        count, _pad = struct.unpack_from("<HH", body, offset)
    except struct.error as exc:
        raise ProtocolError(f"truncated Demand Active PDU ({len(body)} bytes)") from exc
    offset += 4
    caps: list[tuple[int, bytes]] = []
    for index in range(count):
        if offset + 4 > caps_end or caps_end > len(body):
            raise ProtocolError(f"Demand Active capability set {index} of {count} is truncated")
        cap_type, cap_len = struct.unpack_from("<HH", body, offset)
        if cap_len < 4 or offset + cap_len > caps_end:
            raise ProtocolError(f"capability set type {cap_type} has bad length {cap_len}")
        caps.append((cap_type, body[offset + 4:offset + cap_len]))
        offset += cap_len
    session_id = 0
    if len(body) >= caps_end + 4:
        session_id = struct.unpack_from("<I", body, caps_end)[0]
    return DemandActive(share_id, source, tuple(caps), session_id)


@dataclass(frozen=True, slots=True)
class BitmapData:
    """One rectangle of a bitmap update (2.2.9.1.1.3.1.2.2).

    The destination is inclusive (dest_right, dest_bottom); width x height is
    the bitmap as encoded, which may be wider and taller than the destination.
    """

    dest_left: int
    dest_top: int
    dest_right: int
    dest_bottom: int
    width: int
    height: int
    bpp: int
    flags: int
    data: bytes

    @property
    def compressed(self) -> bool:
        return bool(self.flags & BITMAP_COMPRESSION)


def parse_bitmap_update(data: bytes) -> list[BitmapData]:
    """TS_UPDATE_BITMAP_DATA: the same bytes in slow-path and fast-path updates."""
    try:
        update_type, count = struct.unpack_from("<HH", data)
    except struct.error as exc:
        raise ProtocolError("truncated bitmap update header") from exc
    if update_type != UPDATETYPE_BITMAP:
        raise ProtocolError(f"bitmap update has updateType {update_type}")
    offset = 4
    rects: list[BitmapData] = []
    for index in range(count):
        try:
            fields = struct.unpack_from("<9H", data, offset)
        except struct.error as exc:
            raise ProtocolError(f"bitmap rectangle {index} of {count} is truncated") from exc
        left, top, right, bottom, width, height, bpp, flags, length = fields
        offset += 18
        start = offset
        if flags & BITMAP_COMPRESSION and not flags & NO_BITMAP_COMPRESSION_HDR:
            # bitmapLength includes the 8-byte TS_CD_HEADER, which is skipped.
            start += _COMPRESSION_HEADER_SIZE
        end = offset + length
        if end > len(data) or start > end:
            raise ProtocolError(f"bitmap rectangle {index} claims {length} bytes past the end")
        rects.append(BitmapData(left, top, right, bottom, width, height, bpp, flags,
                                data[start:end]))
        offset = end
    return rects


# Client finalization payloads (2.2.1.14 - 2.2.1.18), sent client-first (fix 4).
CTRLACTION_REQUEST_CONTROL = 0x0001
CTRLACTION_COOPERATE = 0x0004
SYNCMSGTYPE_SYNC = 0x0001


def synchronize_payload(target_user: int) -> bytes:
    return struct.pack("<HH", SYNCMSGTYPE_SYNC, target_user)


def control_payload(action: int) -> bytes:
    return struct.pack("<HHI", action, 0, 0)


def font_list_payload() -> bytes:
    # numberFonts 0, totalNumFonts 0, FONTLIST_FIRST | FONTLIST_LAST, entrySize 50.
    return struct.pack("<HHHH", 0, 0, 0x0003, 0x0032)


# Save Session Info PDU (2.2.10.1.1): infoType values and logon errors (2.2.10.1.1.4.1.1).
INFOTYPE_LOGON = 0x0
INFOTYPE_LOGON_LONG = 0x1
INFOTYPE_LOGON_PLAINNOTIFY = 0x2
INFOTYPE_LOGON_EXTENDED_INFO = 0x3
LOGON_EX_AUTORECONNECTCOOKIE = 0x1
LOGON_EX_LOGONERRORS = 0x2
LOGON_FAILED_BAD_PASSWORD = 0x0
LOGON_FAILED_UPDATE_PASSWORD = 0x1
LOGON_FAILED_OTHER = 0x2
LOGON_WARNING = 0x3
LOGON_FAILED_CREDENTIALS = frozenset({LOGON_FAILED_BAD_PASSWORD, LOGON_FAILED_UPDATE_PASSWORD})
LOGON_ERROR_NAMES = {
    LOGON_FAILED_BAD_PASSWORD: "bad user name or password",
    LOGON_FAILED_UPDATE_PASSWORD: "the password must be changed",
    LOGON_FAILED_OTHER: "logon failed",
    LOGON_WARNING: "logon warning",
}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    logged_on: bool
    logon_error: int | None = None
    logon_data: int = 0


def parse_session_info(body: bytes) -> SessionInfo:
    """A logon notification, or the logon error an extended-info PDU reports."""
    if len(body) < 4:
        raise ProtocolError("truncated Save Session Info PDU")
    info_type = struct.unpack_from("<I", body)[0]
    if info_type in (INFOTYPE_LOGON, INFOTYPE_LOGON_LONG, INFOTYPE_LOGON_PLAINNOTIFY):
        return SessionInfo(logged_on=True)
    if info_type != INFOTYPE_LOGON_EXTENDED_INFO:
        raise ProtocolError(f"Save Session Info PDU has unknown infoType {info_type}")
    try:
        _length, present = struct.unpack_from("<HI", body, 4)
        offset = 10
        if present & LOGON_EX_AUTORECONNECTCOOKIE:
            offset += 4 + struct.unpack_from("<I", body, offset)[0]
        if present & LOGON_EX_LOGONERRORS:
            _size, error, data = struct.unpack_from("<III", body, offset)
            return SessionInfo(logged_on=False, logon_error=error, logon_data=data)
    except struct.error as exc:
        raise ProtocolError("truncated Save Session Info extended logon info") from exc
    return SessionInfo(logged_on=False)
