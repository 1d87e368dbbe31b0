"""The RDP byte stream, hardened against a hostile server.

aardwolf 0.2.16 frames PDUs with asysocks' UniConnection and its own
TPKTPacketizer. Three things there trust the peer, and are replaced here:

- a TPKT or fast-path header announcing fewer bytes than the header itself
  makes TPKTPacketizer yield empty packets for ever without consuming
  input; under TLS asysocks collects them in a list, so the event loop
  never runs again (no timeout fires) while memory grows without bound;
- UniConnection.read() turns every error (a corrupt TLS record, an
  undecodable X.224 header) into "the server closed the connection";
- nothing bounds how long one PDU may take to arrive, so a server that
  dribbles a byte a second holds a capture in a half-read PDU for ever.

Lengths themselves are bounded by the framing: at most 65535 bytes for a
TPKT and 32767 for a fast-path PDU, so no header can make the buffer grow
past one PDU plus one read.

And one cost: asysocks' PacketizerSSL takes plaintext out of the TLS object
1 KiB per call, concatenating as it goes; on a busy desktop that was a
tenth of the capture's CPU. LargeReadPacketizerSSL reads whole records.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from aardwolf.network.tpkt import CredSSPPacketizer, TPKTPacketizer
from aardwolf.protocol.tpkt import TPKT
from aardwolf.protocol.x224 import X224Packet
from asysocks.unicomm.common.connection import UniConnection
from asysocks.unicomm.common.packetizers import Packetizer
from asysocks.unicomm.common.packetizers.ssl import PacketizerSSL

from lucid_recorder.rdp.errors import CaptureError, ProtocolError, StepTimeoutError

TPKT_HEADER_SIZE = 4
# A fast-path output header is one octet, then a length of one or two octets.
FASTPATH_SHORT_HEADER_SIZE = 2
FASTPATH_LONG_HEADER_SIZE = 3
# CredSSP TSRequest messages carry NTLM tokens of a few KiB; a length field
# claiming more is refused before anything is buffered for it.
MAX_CREDSSP_MESSAGE = 65535
# What an error message quotes of the server's own words at most.
MAX_QUOTED = 200
# Plaintext taken from the TLS object per call: more than one TLS record (16 KiB), so a
# call returns all a record holds (SSLObject.read's default is 1 KiB).
TLS_READ_SIZE = 65536


class BoundedTPKTPacketizer(TPKTPacketizer):
    """TPKTPacketizer that refuses a length shorter than its header instead of looping."""

    def process_buffer(self) -> Iterator[tuple[bool, Any]]:
        while len(self.in_buffer) >= TPKT_HEADER_SIZE:
            buffer = self.in_buffer
            if buffer[0] == 3:
                size = int.from_bytes(buffer[2:4], "big")
                if size <= TPKT_HEADER_SIZE:
                    raise ProtocolError(f"TPKT header announces {size} bytes, "
                                        "no more than the header itself")
            elif buffer[1] & 0x80:
                size = int.from_bytes(buffer[1:3], "big") & 0x7FFF
                if size < FASTPATH_LONG_HEADER_SIZE:
                    raise ProtocolError(f"fast-path header announces {size} bytes, "
                                        "less than the header itself")
            else:
                size = buffer[1]
                if size < FASTPATH_SHORT_HEADER_SIZE:
                    raise ProtocolError(f"fast-path header announces {size} bytes, "
                                        "less than the header itself")
            if len(buffer) < size:
                return
            self.in_buffer = buffer[size:]
            if buffer[0] != 3:
                yield True, buffer[:size]
            elif self.wrap_x224:
                yield False, X224Packet.from_bytes(TPKT.from_bytes(buffer[:size]).tpdu)
            else:
                yield False, TPKT.from_bytes(buffer[:size]).tpdu


class BoundedCredSSPPacketizer(CredSSPPacketizer):
    """CredSSPPacketizer that refuses a BER length it would buffer gigabytes for."""

    def process_buffer(self) -> Iterator[bytes]:
        while len(self.in_buffer) >= 6:
            size = CredSSPPacketizer.calcualte_length(self.in_buffer[:6])
            if size > MAX_CREDSSP_MESSAGE:
                raise ProtocolError(f"CredSSP message announces {size} bytes, "
                                    f"more than {MAX_CREDSSP_MESSAGE}")
            if len(self.in_buffer) < size:
                return
            message, self.in_buffer = self.in_buffer[:size], self.in_buffer[size:]
            yield message


class LargeReadPacketizerSSL(PacketizerSSL):
    """PacketizerSSL whose data_in reads TLS plaintext in large pieces, joined once.

    Otherwise the base class's: the same handshake, the same packets in the same order
    (all that one network read completed, once it has been decrypted), the same errors.
    """

    async def data_in(self, encdata: bytes | None) -> AsyncGenerator[Any, None]:
        if encdata is None:
            yield None
            return
        self.tls_in_buff.write(encdata)
        pieces = []
        while True:
            try:
                piece = self.tls_obj.read(TLS_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            if not piece:
                break
            pieces.append(piece)
        if not pieces:
            return
        packets = [packet async for packet in self.packetizer.data_in(b"".join(pieces))]
        for packet in packets:
            yield packet


class HardenedConnection(UniConnection):
    """UniConnection whose read() raises typed errors and bounds each PDU's arrival.

    `pdu_timeout`: once part of a PDU (or of a TLS record) has arrived, the
    rest must arrive within this many seconds. Silence between PDUs is not
    limited: an idle desktop sends nothing, and TCP keepalive notices a
    vanished peer.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 pdu_timeout: float) -> None:
        super().__init__(reader, writer, BoundedTPKTPacketizer())
        self.pdu_timeout = pdu_timeout

    def change_packetizer(self, packetizer: Packetizer) -> None:
        """aardwolf's NLA step installs its own packetizers: the bounded ones instead."""
        if type(packetizer) is CredSSPPacketizer:
            packetizer = BoundedCredSSPPacketizer()
        elif type(packetizer) is TPKTPacketizer:
            packetizer = BoundedTPKTPacketizer()
        super().change_packetizer(packetizer)

    async def wrap_ssl(self, ssl_ctx: ssl.SSLContext | None = None,
                       packetizer: Packetizer | None = None) -> None:
        """UniConnection.wrap_ssl with LargeReadPacketizerSSL; a context is required."""
        if ssl_ctx is None:
            raise ValueError("wrap_ssl needs the TLS context that checks the server")
        self.packetizer = LargeReadPacketizerSSL(ssl_ctx, packetizer or self.packetizer)
        await self.packetizer.do_handshake(self.reader, self.writer)

    def _holds_partial_pdu(self) -> bool:
        packetizer = self.packetizer
        if isinstance(packetizer, PacketizerSSL):
            if packetizer.tls_in_buff is not None and packetizer.tls_in_buff.pending:
                return True
            packetizer = packetizer.packetizer
        return bool(getattr(packetizer, "in_buffer", b""))

    async def _read_chunk(self, deadline: float | None) -> bytes:
        if deadline is None:
            return await self.reader.read(self.packetizer.buffer_size)
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            return await asyncio.wait_for(self.reader.read(self.packetizer.buffer_size),
                                          remaining)
        except TimeoutError:
            raise StepTimeoutError(f"a PDU from the server stayed incomplete for "
                                   f"{self.pdu_timeout:g} s") from None

    async def read(self) -> AsyncIterator[Any]:
        try:
            async for packet in self._packets():
                yield packet
        except CaptureError:
            raise
        except ssl.SSLZeroReturnError:
            return  # the server's TLS close_notify: an orderly close
        except ssl.SSLError as exc:
            raise ProtocolError(f"bad TLS data from the server: {one_line(exc)}") from exc
        except OSError:
            return  # reset or gone: the reader reports a closed connection, as before
        except Exception as exc:  # aardwolf's parsers raise bare Exception, among others
            raise ProtocolError(f"undecodable data from the server: {type(exc).__name__}: "
                                f"{one_line(exc)}") from exc

    async def _packets(self) -> AsyncIterator[Any]:
        data: bytes | None = None
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while not self.closing:
            if data is not None:
                async for result in self.packetizer.data_in(data):
                    deadline = None  # a whole PDU arrived: the peer makes progress
                    yield result
            if self._holds_partial_pdu():
                if deadline is None:
                    deadline = loop.time() + self.pdu_timeout
            else:
                deadline = None
            data = await self._read_chunk(deadline)
            if data == b"":
                if self._holds_partial_pdu():
                    raise ProtocolError("the server closed the connection in the middle of a PDU")
                return


def one_line(exc: BaseException) -> str:
    """An exception's text on one line and not too long: it may quote the server's bytes."""
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "..."


__all__ = ["BoundedCredSSPPacketizer", "BoundedTPKTPacketizer", "HardenedConnection",
           "LargeReadPacketizerSSL", "one_line"]
