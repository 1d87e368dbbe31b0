"""MCS domain PDUs (T.125, aligned PER) as compat's read loop receives them.

asn1tools decodes every one; it is the reference, and slow: it ran once per slow-path
PDU and was the largest Python cost left in the capture once the bitmaps and the segment
writer were native (docs/benchmarks.md, the profile). The one PDU of the data path,
sendDataIndication, is parsed by lucid_native when it is installed; every other PDU, and
every form the native parser declines, still goes to asn1tools, so results and errors
are the reference's (tests/unit/test_mcs.py compares both).
"""

from __future__ import annotations

from typing import Any

from lucid_recorder import native

# T.125 DataPriority, in ENUMERATED order: the names asn1tools gives.
PRIORITIES = ("top", "high", "medium", "low")


def decode_domain_pdu(codec: Any, data: bytes) -> tuple[str, dict[str, Any]]:
    """(choice, fields) of a DomainMCSPDU, as `codec.decode("DomainMCSPDU", data)`."""
    core = native.core
    if core is not None:
        fast = core.mcs_send_data_indication(data)
        if fast is not None:
            initiator, channel_id, priority, segmentation, user_data = fast
            return "sendDataIndication", {
                "initiator": initiator, "channelId": channel_id,
                "dataPriority": PRIORITIES[priority],
                # A BIT STRING SIZE(2), left-aligned in its byte, as asn1tools gives it.
                "segmentation": (bytes([segmentation << 6]), 2),
                "userData": user_data}
    return codec.decode("DomainMCSPDU", data)
