"""transport.LargeReadPacketizerSSL gives the packets asysocks' PacketizerSSL gives.

Both run over an in-memory TLS session with a real server SSLObject; the server's
encrypted stream reaches the packetizer in network reads of random sizes.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from pathlib import Path

import pytest
from asysocks.unicomm.common.packetizers.ssl import PacketizerSSL

from lucid_recorder.rdp.transport import BoundedTPKTPacketizer, LargeReadPacketizerSSL
from tests.rdp_peer import self_signed, tpkt


def _handshake(packetizer: PacketizerSSL, server: ssl.SSLObject, server_in: ssl.MemoryBIO,
               server_out: ssl.MemoryBIO) -> None:
    """Pump handshake bytes between the packetizer's TLS object and the server's."""
    for _ in range(20):
        done = 0
        for side in (packetizer.tls_obj, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        server_in.write(packetizer.tls_out_buff.read())
        packetizer.tls_in_buff.write(server_out.read())
        if done == 2:
            return
    raise AssertionError("the in-memory TLS handshake did not finish")


def _received(cls: type[PacketizerSSL], cert_dir: Path, plaintext: list[bytes],
              seed: int) -> list[bytes]:
    cert = self_signed(cert_dir)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    packetizer = cls(client_ctx, BoundedTPKTPacketizer())
    packetizer.packetizer_control("X224")
    packetizer.tls_in_buff, packetizer.tls_out_buff = ssl.MemoryBIO(), ssl.MemoryBIO()
    packetizer.tls_obj = client_ctx.wrap_bio(packetizer.tls_in_buff, packetizer.tls_out_buff)
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = cert.server_context().wrap_bio(server_in, server_out, server_side=True)
    _handshake(packetizer, server, server_in, server_out)
    for packet in plaintext:
        server.write(packet)
    stream = server_out.read()
    rng = random.Random(seed)
    out: list[bytes] = []

    async def feed() -> None:
        offset = 0
        while offset < len(stream):
            size = rng.choice((1, 7, 100, 1500, 16384, 70000))
            async for is_fastpath, packet in packetizer.data_in(stream[offset:offset + size]):
                out.append(bytes(packet) if is_fastpath else packet.data)
            offset += size

    asyncio.run(feed())
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_reads_give_the_packets_of_1_kib_reads(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # X.224 Data TPDUs of up to a whole TPKT, and fast-path PDUs, as a busy desktop sends.
    plaintext = []
    for _ in range(60):
        if rng.random() < 0.5:
            plaintext.append(tpkt(b"\x02\xf0\x80" + rng.randbytes(rng.randint(1, 60000))))
        else:
            body = rng.randbytes(rng.randint(1, 30000))
            plaintext.append(bytes([0]) + (len(body) + 3 | 0x8000).to_bytes(2, "big") + body)
    ours = _received(LargeReadPacketizerSSL, tmp_path / "a", plaintext, seed)
    theirs = _received(PacketizerSSL, tmp_path / "b", plaintext, seed)
    assert len(ours) == len(plaintext)
    assert ours == theirs
