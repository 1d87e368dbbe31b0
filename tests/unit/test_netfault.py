"""The fault relay's pure parts: nfnetlink_queue messages, the delay line, the rule text."""

from __future__ import annotations

import socket
import struct

import pytest

from lucid_devstack.netfault import (
    LINK_MTU,
    NFNL_SUBSYS_QUEUE,
    NFQA_PACKET_HDR,
    NFQNL_MSG_PACKET,
    NFQNL_MSG_VERDICT_BATCH,
    NLMSG_ERROR,
    DelayLine,
    NetlinkEvent,
    accept_up_to_message,
    counters,
    loss_rules,
    nfqueue_message,
    nlattr,
    parse_netlink,
    tbf_args,
    tcp_retransmits,
)


def test_attributes_are_padded_to_four_bytes_and_count_their_header():
    raw = nlattr(7, b"abcde")
    assert struct.unpack_from("=HH", raw) == (9, 7)
    assert len(raw) == 12 and raw.endswith(b"\0\0\0")


def test_batch_verdict_names_the_queue_and_accepts_up_to_the_id():
    raw = accept_up_to_message(queue=3, packet_id=0x01020304, seq=9)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", raw)
    assert (length, seq, flags) == (len(raw), 9, 1)  # a request, no ack wanted
    assert kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH
    family, version, queue = struct.unpack_from("=BBH", raw, 16)
    assert (family, version, socket.ntohs(queue)) == (socket.AF_UNSPEC, 0, 3)
    # NFQA_VERDICT_HDR: verdict NF_ACCEPT (1) and the id, both big-endian.
    assert raw[20:24] == struct.pack("=HH", 12, 2)
    assert raw[24:32] == struct.pack(">II", 1, 0x01020304)


def _queued(packet_id: int) -> bytes:
    header = nlattr(NFQA_PACKET_HDR, struct.pack(">IHB", packet_id, 0x0800, 3))
    other = nlattr(9, b"\x01\x02")  # an attribute before it is skipped
    return nfqueue_message(NFQNL_MSG_PACKET, 0, [other, header], seq=0)


def _error(errno: int) -> bytes:
    body = struct.pack("=i", -errno) + b"\0" * 16
    return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, 0, 1, 0) + body


def test_one_buffer_carries_several_packets_and_acks():
    events = parse_netlink(_queued(41) + _error(0) + _queued(42) + _error(2))
    assert events == [NetlinkEvent(packet_id=41), NetlinkEvent(error=0),
                      NetlinkEvent(packet_id=42), NetlinkEvent(error=2)]


def test_a_truncated_message_is_an_error_not_a_silent_skip():
    with pytest.raises(ValueError, match="truncated"):
        parse_netlink(_queued(1)[:-4])


def test_the_delay_line_releases_in_arrival_order_even_when_the_delay_drops():
    line = DelayLine()
    line.add(1, now=0.0, delay=0.5)
    line.add(2, now=0.1, delay=0.5)
    line.add(3, now=0.2, delay=0.0)  # due at once, but must not overtake 1 and 2
    assert line.due(0.2) is None
    assert line.next_due() == 0.5
    assert line.due(0.5) == 1
    assert line.due(0.65) == 3  # 2 and 3 together: one batch verdict up to 3
    assert len(line) == 0 and line.next_due() is None


def test_loss_rules_count_everything_and_drop_only_with_a_loss():
    assert "drop" not in loss_rules(0)
    rules = loss_rules(15)
    assert "iif lo counter\n" in rules
    assert "iif lo numgen random mod 100 < 15 counter drop" in rules
    with pytest.raises(ValueError):
        loss_rules(101)


def test_counters_are_read_from_nft_json_in_rule_order():
    listed = {"nftables": [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "lucid_netfault"}},
        {"rule": {"expr": [{"match": {}}, {"counter": {"packets": 120, "bytes": 9000}}]}},
        {"rule": {"expr": [{"numgen": {}}, {"counter": {"packets": 13, "bytes": 800}},
                           {"drop": None}]}},
    ]}
    assert counters(listed) == [120, 13]


def test_rate_limit_bucket_holds_several_link_sized_packets():
    assert tbf_args(2000)[:4] == ["tbf", "rate", "2000kbit", "burst"]
    assert int(tbf_args(2000)[4]) >= 10 * LINK_MTU
    with pytest.raises(ValueError):
        tbf_args(0)


def test_retransmissions_come_from_the_tcp_lines_of_snmp():
    snmp = ("Ip: Forwarding DefaultTTL\nIp: 1 64\n"
            "Tcp: RtoAlgorithm ActiveOpens RetransSegs InErrs\nTcp: 1 12 37 0\n"
            "Udp: InDatagrams\nUdp: 4\n")
    assert tcp_retransmits(snmp) == 37
    with pytest.raises(ValueError):
        tcp_retransmits("Ip: Forwarding\nIp: 1\n")
