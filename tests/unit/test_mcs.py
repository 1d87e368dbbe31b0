"""rdp.mcs: lucid_native's sendDataIndication parser against asn1tools, the reference.

decode_domain_pdu with the native core must give exactly what asn1tools gives, or fail
exactly as it does, on every packet: the native parser declines what it does not handle
and asn1tools decodes it, so the tests also check that it does handle the data path.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import asn1tools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucid_recorder import native
from lucid_recorder.rdp.compat import _codecs
from lucid_recorder.rdp.mcs import PRIORITIES, decode_domain_pdu

PER = _codecs()[1]
PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def core() -> ModuleType:
    # Imported, not skipped when absent: the bootstrap builds the extension.
    return importlib.import_module("lucid_native")


def _decode(data: bytes, core: ModuleType | None) -> Any:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(native, "core", core)
        try:
            return decode_domain_pdu(PER, data)
        except asn1tools.Error as exc:
            return f"{type(exc).__name__}: {exc}"


def _send_data_indication(initiator: int, channel_id: int, priority: str, segmentation: int,
                          user_data: bytes) -> bytes:
    return PER.encode("DomainMCSPDU", ("sendDataIndication", {
        "initiator": initiator, "channelId": channel_id, "dataPriority": priority,
        "segmentation": (bytes([segmentation << 6]), 2), "userData": user_data}))


SEND_DATA = st.builds(
    _send_data_indication, st.integers(1001, 65535), st.integers(0, 65535),
    st.sampled_from(PRIORITIES), st.integers(0, 3),
    # Short (< 128), long (< 16 KiB) and fragmented (>= 16 KiB) length forms.
    st.one_of(st.binary(max_size=200), st.integers(16380, 16390).map(bytes),
              st.integers(0, 40000).map(lambda n: b"\x5a" * n)))


@PROPERTY
@given(packet=SEND_DATA)
def test_send_data_indication_decodes_as_asn1tools_does(packet: bytes) -> None:
    core = importlib.import_module("lucid_native")
    reference = _decode(packet, None)
    assert _decode(packet, core) == reference
    kind, body = reference
    assert kind == "sendDataIndication"
    # The data path's PDUs (up to 16 KiB of userData) take the native parser.
    if len(body["userData"]) < 16384:
        assert core.mcs_send_data_indication(packet) is not None


@PROPERTY
@given(packet=SEND_DATA, data=st.data())
def test_damaged_packets_decode_or_fail_as_asn1tools_does(packet: bytes,
                                                          data: st.DataObject) -> None:
    core = importlib.import_module("lucid_native")
    damaged = bytearray(packet[:data.draw(st.integers(0, len(packet)), label="cut")])
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        if damaged:
            at = data.draw(st.integers(0, min(len(damaged) - 1, 9)), label="at")
            damaged[at] ^= data.draw(st.integers(1, 255), label="xor")
    damaged += data.draw(st.binary(max_size=4), label="tail")
    assert _decode(bytes(damaged), core) == _decode(bytes(damaged), None)


@pytest.mark.parametrize("pdu", [
    ("disconnectProviderUltimatum", {"reason": "rn-user-requested"}),
    ("attachUserConfirm", {"result": "rt-successful", "initiator": 1007}),
    ("channelJoinConfirm", {"result": "rt-successful", "initiator": 1007,
                            "requested": 1003, "channelId": 1003}),
])
def test_other_pdus_are_left_to_asn1tools(core: ModuleType, pdu: tuple[str, Any]) -> None:
    packet = PER.encode("DomainMCSPDU", pdu)
    assert core.mcs_send_data_indication(packet) is None
    assert _decode(packet, core) == _decode(packet, None) == pdu


def test_the_usual_xrdp_header_takes_the_native_path(core: ModuleType) -> None:
    # initiator, channel 1003 (the I/O channel), priority high, begin+end, 3 bytes.
    packet = bytes.fromhex("6803ef03eb7003") + b"abc"
    assert core.mcs_send_data_indication(packet) == (1007, 1003, 1, 3, b"abc")
    assert _decode(packet, core) == _decode(packet, None)
