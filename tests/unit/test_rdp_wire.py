"""Byte-level structures of lucid_recorder.rdp.wire, against the specification's layouts."""

from __future__ import annotations

import struct

import pytest

from lucid_recorder.rdp import wire
from lucid_recorder.rdp.errors import ProtocolError


def test_iter_share_pdus_splits_packed_pdus_and_skips_flow_pdus() -> None:
    first = wire.share_data_pdu(0x103EA, 1002, wire.PDUTYPE2_CONTROL, b"\x04\x00" + bytes(6))
    flow = struct.pack("<HHBBH", 0x8000, 0x42, 0, 0, 1002)
    second = wire.share_control_pdu(wire.PDUTYPE_DEACTIVATEALL, 1002, b"\x01\x00")
    pdus = list(wire.iter_share_pdus(first + flow + second))
    assert [(p.pdu_type, p.pdu_type2) for p in pdus] == [
        (wire.PDUTYPE_DATA, wire.PDUTYPE2_CONTROL), (wire.PDUTYPE_DEACTIVATEALL, 0)]
    assert pdus[0].share_id == 0x103EA and pdus[0].body == b"\x04\x00" + bytes(6)


@pytest.mark.parametrize("data", [b"\x10\x00\x17", struct.pack("<HHH", 40, 0x17, 1002) + bytes(6)])
def test_iter_share_pdus_refuses_truncated_data(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(wire.iter_share_pdus(data))


def test_client_synchronize_matches_the_specification_example() -> None:
    # [MS-RDPBCGR] 4.1.14: "16 00 17 00 ef 03 ea 03 01 00 00 01 08 00 1f 00 00 00 01 00 ea 03"
    pdu = wire.share_data_pdu(0x000103EA, 0x03EF, wire.PDUTYPE2_SYNCHRONIZE,
                              wire.synchronize_payload(0x03EA), stream_id=0x01)
    assert pdu == bytes.fromhex("16001700ef03ea030100000108001f0000000100ea03")


def test_control_and_font_list_payloads() -> None:
    assert wire.control_payload(wire.CTRLACTION_COOPERATE) == bytes.fromhex("0400000000000000")
    assert wire.font_list_payload() == bytes.fromhex("0000000003003200")


def bitmap_rect(flags: int, payload: bytes) -> bytes:
    return struct.pack("<9H", 0, 0, 1, 0, 4, 1, 16, flags, len(payload)) + payload


def test_bitmap_compression_header_is_skipped() -> None:
    header = struct.pack("<4H", 0, 2, 8, 8)  # TS_CD_HEADER
    rle = b"\x84" + bytes(8)
    data = struct.pack("<HH", wire.UPDATETYPE_BITMAP, 2) + bitmap_rect(
        wire.BITMAP_COMPRESSION, header + rle) + bitmap_rect(
        wire.BITMAP_COMPRESSION | wire.NO_BITMAP_COMPRESSION_HDR, rle)
    first, second = wire.parse_bitmap_update(data)
    assert first.data == rle and second.data == rle
    assert (first.width, first.dest_right) == (4, 1)


def test_bitmap_update_errors() -> None:
    with pytest.raises(ProtocolError, match="updateType"):
        wire.parse_bitmap_update(struct.pack("<HH", wire.UPDATETYPE_PALETTE, 0))
    with pytest.raises(ProtocolError, match="past the end"):
        wire.parse_bitmap_update(struct.pack("<HH", 1, 1)
                                 + struct.pack("<9H", 0, 0, 1, 0, 4, 1, 16, 0, 99))


def test_session_info_logon_and_errors() -> None:
    assert wire.parse_session_info(struct.pack("<I", wire.INFOTYPE_LOGON) + bytes(20)).logged_on
    extended = struct.pack("<IHI", wire.INFOTYPE_LOGON_EXTENDED_INFO, 18,
                           wire.LOGON_EX_LOGONERRORS) + struct.pack(
        "<III", 8, wire.LOGON_FAILED_BAD_PASSWORD, 0)
    info = wire.parse_session_info(extended)
    assert not info.logged_on and info.logon_error == wire.LOGON_FAILED_BAD_PASSWORD
    with pytest.raises(ProtocolError):
        wire.parse_session_info(struct.pack("<I", 9))
