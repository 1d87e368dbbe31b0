"""Fake RDP servers on loopback for the capture tests: honest up to a chosen point, then hostile.

`fake_server(handler)` serves one asyncio handler on a free port. `Peer`
replays the server side of a real xrdp 0.9.21 session (tests/data/rdp,
xrdp_connect_32.bin) step by step, and at the step it is told misbehaves:
sends half the PDU and hangs up, sends garbage, dribbles the PDU a byte at
a time, says nothing, or sends bytes the test made (an oversized header, an
endless stream). `ThreadedPeer` runs one in a thread for a recorder that
lives in another process (the stack tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import random
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asn1tools
from aardwolf.protocol.T125.MCSPDU_ver_2 import MCSPDU_ver_2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DATA = Path(__file__).resolve().parent / "data" / "rdp"

# X.224 Connection Confirm selecting PROTOCOL_SSL, and one without negotiation data.
CC_SSL = bytes.fromhex("03000013" "0ed000001234" "00" "0200080001000000")
CC_LEGACY = bytes.fromhex("0300000b" "06d000001234" "00")
# Negotiation failures: HYBRID_REQUIRED_BY_SERVER, SSL_NOT_ALLOWED_BY_SERVER; and CredSSP chosen.
CC_NEEDS_NLA = bytes.fromhex("03000013" "0ed000001234" "00" "0300080005000000")
CC_RDP_ONLY = bytes.fromhex("03000013" "0ed000001234" "00" "0300080002000000")
CC_HYBRID = bytes.fromhex("03000013" "0ed000001234" "00" "0200080002000000")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# How long a hostile peer keeps a connection open after misbehaving, at most.
HOLD_SECONDS = 60.0


@contextlib.asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[int]:
    """Serve `handler` on 127.0.0.1; yield the port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


async def read_tpkt(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(4)
    return await reader.readexactly(struct.unpack(">H", header[2:])[0] - 4)


# Certificates.


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    sha256: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path, *, ip: str = "127.0.0.1", dns: str | None = None,
                expired: bool = False) -> CertFiles:
    """A self-signed CA certificate for `ip` (and `dns`), valid now unless `expired`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-rdp")])
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=10 if expired else 1)
    end = now - datetime.timedelta(days=5) if expired else now + datetime.timedelta(days=1)
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip))]
    if dns:
        names.append(x509.DNSName(dns))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return CertFiles(cert_path, key_path, digest)


def tls_server(cert: CertFiles, received: list[bytes]) -> Handler:
    """Answers X.224 with PROTOCOL_SSL, runs TLS, records what the client sends next."""
    context = cert.server_context()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_tpkt(reader)
        writer.write(CC_SSL)
        await writer.drain()
        try:
            await writer.start_tls(context)
            received.append(await asyncio.wait_for(reader.read(4096), 5))
        except (ssl.SSLError, ConnectionError, TimeoutError):
            received.append(b"")
        # Hang up at once: asyncio's TLS close would wait for the peer's close_notify.
        writer.transport.abort()

    return handle


# The recorded xrdp session.


def records(name: str) -> list[tuple[bytes, bytes]]:
    """(kind, bytes) records of a fixture file; see tests/data/rdp/README.md."""
    raw = (DATA / name).read_bytes()
    out, offset = [], 0
    while offset < len(raw):
        kind = raw[offset:offset + 1]
        (length,) = struct.unpack_from(">I", raw, offset + 1)
        out.append((kind, raw[offset + 5:offset + 5 + length]))
        offset += 5 + length
    return out


_PER = asn1tools.compile_string(MCSPDU_ver_2, "per")
IO_CHANNEL = 1003


def tpkt(payload: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def x224_data(mcs: bytes) -> bytes:
    """An MCS PDU in an X.224 Data TPDU in a TPKT, as the server sends it."""
    return tpkt(b"\x02\xf0\x80" + mcs)


def send_data_indication(user_data: bytes, channel: int = IO_CHANNEL) -> bytes:
    """I/O channel bytes as xrdp sends them: MCS Send Data Indication, X.224, TPKT."""
    return x224_data(bytes(_PER.encode("DomainMCSPDU", ("sendDataIndication", {
        "initiator": 1, "channelId": channel, "dataPriority": "high",
        "segmentation": (b"\xc0", 2), "userData": user_data}))))


def xrdp_connect() -> tuple[list[bytes], list[bytes]]:
    """xrdp's MCS replies (X.224 payloads) and I/O channel PDUs of the recorded session."""
    recorded = records("xrdp_connect_32.bin")
    return ([d for k, d in recorded if k == b"X"], [d for k, d in recorded if k == b"S"])


def xrdp_update() -> bytes:
    """One real slow-path bitmap update (32 bpp planar) as I/O channel user data."""
    ((_kind, data),) = records("xrdp_update_padded_32.bin")
    return data


# Where Peer can misbehave, in the order of the connection sequence. Each
# step: (name, client PDUs read first, server PDUs then sent).
STAGES = ("x224", "tls", "mcs", "attach", "join", "license", "demand", "finalize", "active")


def script() -> list[tuple[str, int, list[bytes]]]:
    mcs, io = xrdp_connect()
    return [
        ("x224", 1, [CC_SSL]),
        ("mcs", 1, [x224_data(mcs[0])]),
        ("attach", 2, [x224_data(mcs[1])]),  # Erect Domain has no reply
        ("join", 1, [x224_data(mcs[2])]),
        ("join2", 1, [x224_data(mcs[3])]),
        ("license", 1, [send_data_indication(io[0]), send_data_indication(io[1])]),
        ("demand", 0, [send_data_indication(io[2])]),
        # Confirm Active, Synchronize, Control x 2, Font List.
        ("finalize", 5, [send_data_indication(d) for d in io[3:7]]),
        ("active", 0, [send_data_indication(xrdp_update())]),
    ]


@dataclass
class Peer:
    """A fake xrdp that follows the recorded session up to `stage`, then does `act` there.

    act: "truncate" (half the PDU, then hang up), "garbage" (`garbage_size`
    seeded random bytes instead), "slow" (the PDU a byte every `interval`
    seconds), "silent" (nothing), "raw" (`payload`, then the chunks of
    `stream` while the client reads), or "none" (honest to the end).
    "active" first sends one honest bitmap update, then misbehaves on the next.
    """

    cert: CertFiles
    stage: str = "never"
    act: str = "none"
    interval: float = 1.0
    seed: int = 0
    garbage_size: int = 256
    payload: bytes = b""
    stream: Callable[[], Iterator[bytes]] | None = None
    stream_seconds: float = 30.0
    reached: list[str] = field(default_factory=list)
    sent_bytes: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._session(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client hung up or stopped talking: the test looks at the client
        finally:
            writer.transport.abort()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for name, reads, pdus in script():
            for _ in range(reads):
                await asyncio.wait_for(read_tpkt(reader), HOLD_SECONDS)
            self.reached.append(name)
            if name == self.stage:
                if name == "active":
                    await self._write(writer, pdus[0])
                    await asyncio.sleep(0.3)
                await self._misbehave(reader, writer, pdus[0])
                return
            for pdu in pdus:
                await self._write(writer, pdu)
            if name == "x224":
                self.reached.append("tls")
                if self.stage == "tls":
                    await self._tls_misbehave(reader, writer)
                    return
                await writer.start_tls(self.cert.server_context())
        await self._hold(reader)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.sent_bytes += len(data)
        await writer.drain()

    async def _misbehave(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         pdu: bytes) -> None:
        if self.act == "truncate":
            await self._write(writer, pdu[:len(pdu) // 2])
            await asyncio.sleep(0.2)
            return
        if self.act == "garbage":
            await self._write(writer, random.Random(self.seed).randbytes(self.garbage_size))
        elif self.act == "slow":
            for index in range(len(pdu)):
                await self._write(writer, pdu[index:index + 1])
                await asyncio.sleep(self.interval)
        elif self.act == "raw":
            await self._write(writer, self.payload)
            if self.stream is not None:
                await self._stream(writer)
        elif self.act != "silent":
            raise ValueError(f"unknown act {self.act!r}")
        await self._hold(reader)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        assert self.stream is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + self.stream_seconds
        for chunk in self.stream():
            if loop.time() > end or writer.is_closing():
                return
            # drain() waits while the client does not read: TCP flow control.
            await asyncio.wait_for(self._write(writer, chunk), max(0.1, end - loop.time()))

    async def _tls_misbehave(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        """Misbehave in the TLS handshake itself, on the server's first flight."""
        hello = await asyncio.wait_for(reader.read(16384), HOLD_SECONDS)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.cert.server_context().wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(hello)
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        await self._misbehave(reader, writer, outgoing.read())

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        """Keep the connection until the client closes it (or HOLD_SECONDS pass)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + HOLD_SECONDS
        while loop.time() < end:
            if not await asyncio.wait_for(reader.read(65536), end - loop.time()):
                return


class ThreadedPeer:
    """A Peer served from a thread with its own event loop, for a recorder in another process."""

    def __init__(self, peer: Peer, host: str = "127.0.0.1") -> None:
        self.peer = peer
        self.host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="hostile-rdp-peer", daemon=True)

    def __enter__(self) -> ThreadedPeer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile RDP peer did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self.peer.handle, self.host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)
