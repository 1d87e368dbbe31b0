"""One test (at least) per aardwolf 0.2.16 / xrdp fix, replaying server bytes captured from xrdp.

The fixtures and how they were made: tests/data/rdp/README.md. Where it is
cheap, a test also shows that aardwolf's own code fails on the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import struct
from typing import Any

import asn1tools
import pytest
from aardwolf import _rle
from aardwolf.channels import MCSChannel
from aardwolf.connection import RDPConnection
from aardwolf.protocol.compression import (
    BulkCompressionError,
    BulkCompressionType,
    BulkDecompressor,
)
from aardwolf.protocol.fastpath import FASTPATH_OUTPUT_COMPRESSION, TS_FP_UPDATE_PDU
from aardwolf.protocol.T124.userdata.constants import (
    HIGH_COLOR_DEPTH,
    RNS_UD_CS,
    SUPPORTED_COLOR_DEPTH,
    TS_UD_TYPE,
)
from aardwolf.protocol.T125.infopacket import INFO_FLAG
from aardwolf.protocol.T125.MCSPDU_ver_2 import MCSPDU_ver_2
from aardwolf.protocol.T128.clientconfirmactivepdu import TS_CONFIRM_ACTIVE_PDU
from aardwolf.protocol.T128.inputeventpdu import TS_SHAREDATAHEADER
from aardwolf.protocol.T128.security import SEC_HDR_FLAG
from aardwolf.protocol.T128.serverdemandactivepdu import TS_DEMAND_ACTIVE_PDU
from aardwolf.protocol.T128.share import PDUTYPE2, STREAM_TYPE, normalize_share_data_pdu
from aardwolf.protocol.T128.synchronizepdu import TS_SYNCHRONIZE_PDU
from aardwolf.utils.rectconvert import rectconvert
from PIL import Image, ImageChops

from lucid_recorder.rdp import bitmap as bitmap_module
from lucid_recorder.rdp import compat, rle, settings, wire
from lucid_recorder.rdp.bitmap import decode_bitmap, destination_size
from lucid_recorder.rdp.capture import MonotonicClock
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig
from lucid_recorder.rdp.errors import BitmapDecodeError, ProtocolError, UnsupportedAardwolfError
from lucid_recorder.rdp.events import Event, Rect, TlsMode
from tests.rdp_peer import DATA, records

PER = asn1tools.compile_string(MCSPDU_ver_2, "per")


def connect_records(kind: bytes) -> list[bytes]:
    return [data for k, data in records("xrdp_connect_32.bin") if k == kind]


def xrdp_demand_active() -> bytes:
    """The Demand Active PDU xrdp sent (the I/O data after the two licensing PDUs)."""
    return connect_records(b"S")[2]


def single_update(name: str) -> tuple[bytes, list[wire.BitmapData]]:
    ((_kind, data),) = records(name)
    (pdu,) = wire.iter_share_pdus(data)
    return data, wire.parse_bitmap_update(pdu.body)


class FakeX224:
    """Stands in for aardwolf's X224Network: records writes, replays reads."""

    def __init__(self, replies: list[bytes] | None = None) -> None:
        self.written: list[bytes] = []
        self.replies = list(replies or [])

    async def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    async def read(self) -> Any:
        if not self.replies:
            raise AssertionError("the client read with no server reply queued")
        return type("Packet", (), {"data": self.replies.pop(0)})()


def make_connection(color_depth: int = 32, password: str = "secret") -> compat.CompatRDPConnection:
    """A connection after MCS Attach User, as xrdp answered it, with a fake transport."""
    config = CaptureConfig(host="127.0.0.1", port=3389, username="lucid", password=password,
                           color_depth=color_depth,
                           tls=TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256="0" * 64))
    events: asyncio.Queue[Event] = asyncio.Queue()
    connection = compat.CompatRDPConnection(config, events, MonotonicClock())
    connection._t125_per_codec = PER
    connection._x224net = FakeX224()
    # xrdp's Attach User Confirm, decoded by aardwolf's codec as aardwolf does.
    _kind, confirm = PER.decode("DomainMCSPDU", connect_records(b"X")[1])
    connection._initiator = confirm["initiator"]
    channel = MCSChannel()
    channel.channel_id = 1003
    connection._RDPConnection__joined_channels["MCS"] = channel
    return connection


def sent_share_pdus(connection: compat.CompatRDPConnection) -> list[wire.SharePdu]:
    pdus = []
    for request in connection._x224net.written:
        kind, body = PER.decode("DomainMCSPDU", request)
        assert kind == "sendDataRequest"
        pdus.extend(wire.iter_share_pdus(body["userData"]))
    return pdus


# The version pin.


def test_refuses_any_other_aardwolf_version() -> None:
    compat.check_aardwolf_version()  # the installed one is the supported one
    with pytest.raises(UnsupportedAardwolfError, match=r"written for aardwolf 0\.2\.16.*0\.2\.17"):
        compat.check_aardwolf_version("0.2.17")


# Fix 1: Erect Domain Request.


def test_erect_domain_request_is_valid_per() -> None:
    encoded = PER.encode("DomainMCSPDU", ("erectDomainRequest", {"subHeight": 0, "subInterval": 0}))
    assert wire.ERECT_DOMAIN_REQUEST == bytes(encoded) == bytes.fromhex("0401000100")
    assert PER.decode("DomainMCSPDU", wire.ERECT_DOMAIN_REQUEST) == (
        "erectDomainRequest", {"subHeight": 0, "subInterval": 0})


def test_aardwolf_erect_domain_request_is_not_valid_per() -> None:
    # aardwolf 0.2.16 writes these bytes; FreeRDP's shadow server answered them
    # with "[mcs_recv_erect_domain_request] ... 1 bytes too long!" and hung up.
    with pytest.raises((asn1tools.Error, ValueError)):
        PER.decode("DomainMCSPDU", bytes.fromhex("0400010001"))


async def test_erect_domain_sends_the_per_bytes() -> None:
    connection = make_connection()
    await connection._erect_domain()
    assert connection._x224net.written == [wire.ERECT_DOMAIN_REQUEST]


# Fix 2: join the user channel, then the I/O channel.


async def test_joins_user_channel_before_io_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = make_connection()
    # xrdp's two Channel Join Confirms, in the order it sent them.
    connection._x224net.replies = connect_records(b"X")[2:4]

    async def no_reader() -> None:
        return None

    monkeypatch.setattr(connection, "_read_loop", no_reader)
    await connection._join_channels()
    await asyncio.gather(connection._reader_task)
    joins = [PER.decode("DomainMCSPDU", request) for request in connection._x224net.written]
    # aardwolf's UserId type lacks T.125's 1001 offset: xrdp's user channel 1004
    # arrives as initiator 3, and the channel id field must carry 1004.
    assert connection._initiator == 3
    assert joins == [
        ("channelJoinRequest", {"initiator": 3, "channelId": 1004}),
        ("channelJoinRequest", {"initiator": 3, "channelId": 1003}),
    ]
    confirms = [PER.decode("DomainMCSPDU", reply) for reply in connect_records(b"X")[2:4]]
    assert [c[1]["channelId"] for c in confirms] == [1004, 1003]


# Fix 3: unknown capability sets are skipped.


def test_demand_active_with_type_6_parses() -> None:
    (pdu,) = wire.iter_share_pdus(xrdp_demand_active())
    assert pdu.pdu_type == wire.PDUTYPE_DEMANDACTIVE
    demand = wire.parse_demand_active(pdu.body)
    types = [cap_type for cap_type, _data in demand.capabilities]
    assert 6 in types and wire.CAPSTYPE_BITMAP in types
    assert demand.share_id == 0x000103EA
    assert demand.desktop == (32, 1024, 768)


def test_aardwolf_demand_active_parser_rejects_type_6() -> None:
    with pytest.raises(ValueError, match="6 is not a valid CAPSTYPE"):
        TS_DEMAND_ACTIVE_PDU.from_bytes(xrdp_demand_active())


def test_truncated_demand_active_is_a_protocol_error() -> None:
    (pdu,) = wire.iter_share_pdus(xrdp_demand_active())
    with pytest.raises(ProtocolError, match=r"truncated|bad length"):
        wire.parse_demand_active(pdu.body[:40])


# Fix 4: client-first finalization.


async def test_finalization_is_sent_without_waiting_for_the_server() -> None:
    connection = make_connection()
    (pdu,) = wire.iter_share_pdus(xrdp_demand_active())
    # Nothing from the server is queued: waiting for its Synchronize would hang.
    await asyncio.wait_for(connection._confirm_active(wire.parse_demand_active(pdu.body)), 1)
    sent = sent_share_pdus(connection)
    assert [(p.pdu_type, p.pdu_type2) for p in sent] == [
        (wire.PDUTYPE_CONFIRMACTIVE, 0),
        (wire.PDUTYPE_DATA, wire.PDUTYPE2_SYNCHRONIZE),
        (wire.PDUTYPE_DATA, wire.PDUTYPE2_CONTROL),
        (wire.PDUTYPE_DATA, wire.PDUTYPE2_CONTROL),
        (wire.PDUTYPE_DATA, wire.PDUTYPE2_FONTLIST),
    ]
    assert [struct.unpack_from("<H", p.body)[0] for p in sent[2:4]] == [
        wire.CTRLACTION_COOPERATE, wire.CTRLACTION_REQUEST_CONTROL]
    assert all(p.source == connection.user_channel_id == 1004 for p in sent)
    assert all(p.share_id == 0x000103EA for p in sent[1:])
    # The Confirm Active itself is well formed and asks for lossless 32 bpp.
    confirm = TS_CONFIRM_ACTIVE_PDU.from_bytes(
        wire.share_control_pdu(wire.PDUTYPE_CONFIRMACTIVE, 1004, sent[0].body))
    caps = {c.capabilitySetType.name: c.capability for c in confirm.capabilitySets}
    assert caps["BITMAP"].preferredBitsPerPixel == 32
    assert caps["BITMAP"].desktopResizeFlag is True
    assert caps["BITMAP"].drawingFlags & 0x06 == 0  # no colour loss, no subsampling
    assert caps["ORDER"].orderSupport == 0


async def test_demand_active_in_a_session_reactivates_and_resizes() -> None:
    # Deactivation-Reactivation: xrdp resizes an 800x600 session to its 1024x768 screen.
    connection = make_connection()
    connection.desktop = (32, 800, 600)
    connection._active = True
    await connection._dispatch(xrdp_demand_active())
    [event] = connection.events.get_nowait()
    assert (type(event).__name__, event.w, event.h) == ("DesktopResize", 1024, 768)
    sent = sent_share_pdus(connection)
    assert len(sent) == 5 and sent[0].pdu_type == wire.PDUTYPE_CONFIRMACTIVE


# Fix 5: Share Control Header totalLength.


def test_share_data_pdu_length_matches_xrdp() -> None:
    # xrdp's own Synchronize PDU: 18 header bytes + 4 payload bytes = 22.
    server_sync = connect_records(b"S")[3]
    (pdu,) = wire.iter_share_pdus(server_sync)
    assert pdu.pdu_type2 == wire.PDUTYPE2_SYNCHRONIZE
    assert struct.unpack_from("<H", server_sync)[0] == len(server_sync) == 22
    ours = wire.share_data_pdu(pdu.share_id, 1004, wire.PDUTYPE2_SYNCHRONIZE, pdu.body)
    assert len(ours) == 22
    assert struct.unpack_from("<H", ours)[0] == 22  # totalLength
    assert struct.unpack_from("<H", ours, 12)[0] == 8  # uncompressedLength, as 4.1.14
    assert ours[6:11] == server_sync[6:11]  # shareId, pad1
    assert ours[14:] == server_sync[14:15] + b"\x00\x00\x00" + pdu.body


async def test_handle_out_data_writes_correct_total_length() -> None:
    connection = make_connection()
    header = TS_SHAREDATAHEADER()
    header.shareID = 0x000103EA
    header.streamID = STREAM_TYPE.MED
    header.pduType2 = PDUTYPE2.SYNCHRONIZE
    sync = TS_SYNCHRONIZE_PDU()
    sync.targetUser = 1002
    await connection.handle_out_data(sync, None, header, None, 1003, False)
    (_kind, body), = [PER.decode("DomainMCSPDU", w) for w in connection._x224net.written]
    data = body["userData"]
    assert struct.unpack_from("<H", data)[0] == len(data) == 18 + len(sync.to_bytes())


async def test_aardwolf_writes_total_length_six_too_large() -> None:
    fake = type("Fake", (), {})()
    fake._t125_per_codec = PER
    fake._x224net = FakeX224()
    fake._initiator = 3
    fake.cryptolayer = None
    header = TS_SHAREDATAHEADER()
    header.shareID = 0x000103EA
    header.streamID = STREAM_TYPE.MED
    header.pduType2 = PDUTYPE2.SYNCHRONIZE
    sync = TS_SYNCHRONIZE_PDU()
    sync.targetUser = 1002
    await RDPConnection.handle_out_data(fake, sync, None, header, None, 1003, False)
    (_kind, body), = [PER.decode("DomainMCSPDU", w) for w in fake._x224net.written]
    data = body["userData"]
    # xrdp answers this with "bad TS_SHARECONTROLHEADER length 0x001C" and disconnects.
    assert struct.unpack_from("<H", data)[0] == len(data) + 6 == 28


# Fix 6: INFO_AUTOLOGON; fix 9: no INFO_COMPRESSION.


async def sent_info_flags(connection: compat.CompatRDPConnection) -> INFO_FLAG:
    connection.x224_protocol = compat.SUPP_PROTOCOLS.SSL
    ok, err = await connection._RDPConnection__send_userdata()
    assert (ok, err) == (True, None)
    (_kind, body), = [PER.decode("DomainMCSPDU", w) for w in connection._x224net.written]
    data = body["userData"]
    assert SEC_HDR_FLAG(struct.unpack_from("<H", data)[0]) & SEC_HDR_FLAG.INFO_PKT
    return INFO_FLAG(struct.unpack_from("<I", data, 8)[0])  # after CodePage


async def test_info_pdu_asks_for_autologon_with_a_password() -> None:
    flags = await sent_info_flags(make_connection(password="secret"))
    assert flags & INFO_FLAG.AUTOLOGON
    assert not flags & INFO_FLAG.COMPRESSION  # fix 9


async def test_info_pdu_without_password_has_no_autologon() -> None:
    flags = await sent_info_flags(make_connection(password=""))
    assert not flags & INFO_FLAG.AUTOLOGON


def test_login_screen_is_what_xrdp_shows_without_autologon(implementation: str) -> None:
    # Captured with the Info PDU as aardwolf sends it: xrdp drew its login
    # dialog over its teal (0x009CB5) background instead of the desktop.
    _data, rects = single_update("xrdp_login_screen_32.bin")
    first = decode_bitmap(rects[0])
    assert first.rgb[:3] == bytes((0x00, 0x9C, 0xB5))
    assert set(first.rgb[i:i + 3] for i in range(0, len(first.rgb), 3)) == {b"\x00\x9c\xb5"}


# Fix 7: slow-path Graphics Updates become Rect events.


async def test_slow_path_bitmap_update_becomes_rect_events(implementation: str) -> None:
    connection = make_connection()
    connection._active = True
    data, rects = single_update("xrdp_update_padded_32.bin")
    await connection._dispatch(data)
    events = []
    while not connection.events.empty():
        events.extend(connection.events.get_nowait())
    assert [type(e) for e in events] == [Rect] * len(rects)
    for event, bitmap in zip(events, rects, strict=True):
        assert (event.x, event.y) == (bitmap.dest_left, bitmap.dest_top)
        assert (event.w, event.h) == destination_size(bitmap)
        assert len(event.rgb) == event.w * event.h * 3
    assert connection.stats["bitmap_updates"] == 1
    assert connection.stats["rects"] == len(rects)


async def test_aardwolf_mcs_channel_only_queues_slow_path_updates() -> None:
    # aardwolf 0.2.16 hands I/O channel data to MCSChannel, which parks it in
    # a queue nobody reads after the connection sequence: no video event.
    data, _rects = single_update("xrdp_update_padded_32.bin")
    channel = MCSChannel()
    await channel.process_channel_data(data)
    assert channel.out_queue.qsize() == 1


# Fix 8: decode at the bitmap's own size, then crop.


@pytest.mark.parametrize("name", ["xrdp_update_padded_16.bin", "xrdp_update_padded_32.bin"])
def test_padded_bitmap_is_decoded_then_cropped(name: str, implementation: str) -> None:
    _data, rects = single_update(name)
    padded = [r for r in rects if r.width > destination_size(r)[0]]
    assert padded, "the fixture must hold a padded bitmap"
    for bitmap in padded:
        rect = decode_bitmap(bitmap)
        assert (rect.w, rect.h) == destination_size(bitmap)
        full = bitmap_module._decode_full(bitmap)
        assert full.size == (bitmap.width, bitmap.height)
        assert rect.rgb == full.crop((0, 0, rect.w, rect.h)).tobytes()


@pytest.mark.parametrize("name", ["xrdp_update_padded_16.bin", "xrdp_update_padded_32.bin"])
def test_aardwolf_fails_on_padded_bitmaps(name: str) -> None:
    _data, rects = single_update(name)
    bitmap = next(r for r in rects if r.width > destination_size(r)[0])
    width, height = destination_size(bitmap)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(BaseException) as caught:
        rectconvert(width, height, bitmap.bpp, bitmap.compressed, bitmap.data)
    # 16 bpp: ValueError "decoded more pixels than width*height";
    # 32 bpp: the native planar decoder panics (pyo3 PanicException).
    assert "more pixels" in str(caught.value) or type(caught.value).__name__ == "PanicException"


# Fix 9: bulk compression off.


def test_bulk_compression_is_never_offered() -> None:
    connection = make_connection()
    assert connection.iosettings.bulk_compression_max_type is None
    assert connection.bulk_decompressor is None


def test_aardwolf_bulk_decompressor_fails_on_xrdp_packets() -> None:
    decompressor = BulkDecompressor(BulkCompressionType.RDP61, 608299)
    error = None
    for kind, data in records("xrdp_bulk_rdp61.bin"):
        if kind == b"F":
            for update in TS_FP_UPDATE_PDU.from_bytes(data).fpOutputUpdates:
                if update.compression == FASTPATH_OUTPUT_COMPRESSION.USED:
                    decompressor.decompress(update.updateData, update.compressionFlags)
        elif struct.unpack_from("<H", data)[0] == len(data):  # a Share PDU, not licensing
            try:
                normalize_share_data_pdu(data, decompressor)
            except BulkCompressionError as exc:
                error = exc
    # xrdp writes uncompressedLength as payload + 18; aardwolf expects + 4.
    assert error is not None and "does not match its declaration" in str(error)


def test_compressed_share_pdu_is_refused_not_misread() -> None:
    compressed = records("xrdp_bulk_rdp61.bin")[-1][1]
    with pytest.raises(ProtocolError, match="bulk-compressed"):
        list(wire.iter_share_pdus(compressed))


# True colour: highColorDepth 24 + RNS_UD_CS_WANT_32BPP_SESSION; B, G, R order.


def core_fields(color_depth: int) -> tuple[int, int, int]:
    config = CaptureConfig(host="h", color_depth=color_depth, tls=TlsConfig(
        mode=TlsMode.FINGERPRINT, fingerprint_sha256="0" * 64))
    core = settings.client_core_data(config, 1024, 768, compat.SUPP_PROTOCOLS.SSL)
    data = core.to_bytes()
    assert struct.unpack_from("<H", data)[0] == TS_UD_TYPE.CS_CORE.value
    # highColorDepth, supportedColorDepths, earlyCapabilityFlags (2.2.1.3.2)
    return struct.unpack_from("<HHH", data, 140)


def test_client_core_data_asks_for_32_bpp_the_right_way() -> None:
    high, supported, early = core_fields(32)
    assert high == HIGH_COLOR_DEPTH.HIGH_COLOR_24BPP.value
    assert supported & SUPPORTED_COLOR_DEPTH.RNS_UD_32BPP_SUPPORT
    assert early & RNS_UD_CS.WANT_32BPP_SESSION


@pytest.mark.parametrize(("depth", "high"), [(24, 24), (16, 16)])
def test_client_core_data_other_depths(depth: int, high: int) -> None:
    got_high, supported, early = core_fields(depth)
    assert got_high == high
    assert not early & RNS_UD_CS.WANT_32BPP_SESSION
    assert not supported & SUPPORTED_COLOR_DEPTH.RNS_UD_32BPP_SUPPORT


def test_xrdp_granted_32_bpp() -> None:
    (pdu,) = wire.iter_share_pdus(xrdp_demand_active())
    assert wire.parse_demand_active(pdu.body).desktop[0] == 32


def test_32_bpp_pixels_come_out_in_rgb_order(implementation: str) -> None:
    _data, rects = single_update("xrdp_login_screen_32.bin")
    bitmap = rects[0]
    assert bitmap.bpp == 32 and bitmap.compressed
    assert decode_bitmap(bitmap).rgb[:3] == bytes((0x00, 0x9C, 0xB5))  # xrdp's teal
    # aardwolf's RDP_VIDEO path labels the decoder's B, G, R, A bytes RGBA.
    with contextlib.redirect_stdout(io.StringIO()):
        image = rectconvert(bitmap.width, bitmap.height, 32, True, bitmap.data)
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[:3] == (0xB5, 0x9C, 0x00)


# Decoders added on the way: raw planar 32 bpp and 24 bpp RLE.


def test_raw_planar_matches_the_native_rle_decoder() -> None:
    # xrdp sends planes without RLE when RLE does not pay (its fsplit4 writes
    # the bottom row first); rebuild such a bitmap from a real one.
    _data, rects = single_update("xrdp_update_padded_32.bin")
    bitmap = rects[0]
    full = bitmap_module._decode_full(bitmap)
    bottom_up = full.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    red, green, blue = (plane.tobytes() for plane in bottom_up.split())
    alpha = b"\xff" * (bitmap.width * bitmap.height)
    raw = wire.BitmapData(bitmap.dest_left, bitmap.dest_top, bitmap.dest_right,
                          bitmap.dest_bottom, bitmap.width, bitmap.height, 32, bitmap.flags,
                          b"\x00" + alpha + red + green + blue + b"\x00")
    assert bitmap_module._decode_full(raw).tobytes() == full.tobytes()
    no_alpha = dataclasses.replace(raw, data=b"\x20" + red + green + blue + b"\x00")
    assert bitmap_module._decode_full(no_alpha).tobytes() == full.tobytes()


def test_lossy_planar_is_refused(implementation: str) -> None:
    _data, rects = single_update("xrdp_update_padded_32.bin")
    bitmap = rects[0]
    lossy = dataclasses.replace(bitmap, data=b"\x09" + bytes(bitmap.width * bitmap.height * 4))
    with pytest.raises(BitmapDecodeError, match="lossy"):
        decode_bitmap(lossy)


def test_24_bpp_rle_equals_the_screenshot(implementation: str) -> None:
    (png,) = DATA.glob("xrdp_update_24_at_*.png")
    left, top = (int(v) for v in png.stem.rsplit("_at_", 1)[1].split("_"))
    expected = Image.open(png).convert("RGB")
    _data, rects = single_update("xrdp_update_24.bin")
    assert {r.bpp for r in rects} == {24}
    screen = Image.new("RGB", expected.size)
    for bitmap in rects:
        rect = decode_bitmap(bitmap)
        screen.paste(Image.frombytes("RGB", (rect.w, rect.h), rect.rgb),
                     (rect.x - left, rect.y - top))
    assert ImageChops.difference(screen, expected).getbbox() is None


def test_python_rle_matches_native_decoder_at_16_bpp() -> None:
    _data, rects = single_update("xrdp_update_padded_16.bin")
    for bitmap in rects:
        native = bytes(_rle.bitmap_decompress(bitmap.data, bitmap.width, bitmap.height, 16, 1))
        ours = rle.decompress(bitmap.data, bitmap.width, bitmap.height, 2)
        for y in range(bitmap.height):
            for x in range(bitmap.width):
                r, g, b, _a = native[(y * bitmap.width + x) * 4:(y * bitmap.width + x + 1) * 4]
                value = ours[(bitmap.height - 1 - y) * bitmap.width + x]
                assert (value >> 11, value >> 5 & 0x3F, value & 0x1F) == (r >> 3, g >> 2, b >> 3)


def test_rle_overrun_is_an_error() -> None:
    with pytest.raises(BitmapDecodeError, match="past"):
        rle.decompress(bytes([0x1F]), 4, 1, 3)  # a 31-pixel background run for 4 pixels
