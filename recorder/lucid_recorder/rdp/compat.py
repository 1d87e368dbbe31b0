"""aardwolf 0.2.16 made to complete sessions with xrdp and strict servers.

One subclass of aardwolf's RDPConnection carries the fixes, each in the
method (or, for pure byte work, the function) that owns that step, which
says which fix it is. The subclass runs its own connection sequence
(`establish`, one timeout per network step) and reuses aardwolf for what
works: X.224 negotiation, CredSSP, MCS Attach User, the Client Info PDU,
licensing, the PDU classes and the native RLE / planar decoder. The
numbered facts are those of issue 4, each checked against xrdp 0.9.21 (and
1, 2 against FreeRDP's shadow server); tests/unit/test_rdp_compat.py replays
the server bytes:

1. Erect Domain Request in correct PER             -> _erect_domain, wire.ERECT_DOMAIN_REQUEST
2. join the user channel before the I/O channel     -> _join_channels, user_channel_id
3. skip capability sets of unknown type             -> wire.parse_demand_active
4. client-first finalization                        -> _confirm_active
5. Share Control totalLength = payload + 18         -> handle_out_data, wire.share_data_pdu
6. INFO_AUTOLOGON when the Info PDU has a password  -> handle_out_data
7. slow-path bitmap updates become Rect events      -> updates.UpdateDecoder.share_pdu
8. decode at the bitmap's own size, then crop       -> bitmap.decode_bitmap
9. bulk compression off                             -> settings.iosettings
True colour: highColorDepth 24 + RNS_UD_CS_WANT_32BPP_SESSION -> settings.client_core_data;
decoded 32 bpp pixels are B, G, R, not R, G, B      -> bitmap._NATIVE_MODES

The legacy "RDP" security layer is never offered: it cannot authenticate
the server, so TLS (with CredSSP when the server demands it) is required.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import asn1tools
from aardwolf._version import __version__ as _aardwolf_version
from aardwolf.channels import MCSChannel
from aardwolf.commons.target import RDPTarget
from aardwolf.connection import RDPConnection
from aardwolf.network.x224 import X224Network
from aardwolf.protocol.fastpath.reassembly import FastPathProtocolError
from aardwolf.protocol.T124.GCCPDU import GCCPDU
from aardwolf.protocol.T124.userdata import TS_SC, TS_UD
from aardwolf.protocol.T124.userdata.clientclusterdata import TS_UD_CS_CLUSTER
from aardwolf.protocol.T124.userdata.clientnetworkdata import TS_UD_CS_NET
from aardwolf.protocol.T124.userdata.clientsecuritydata import TS_UD_CS_SEC
from aardwolf.protocol.T124.userdata.constants import (
    ENCRYPTION_FLAG,
    TS_UD_TYPE,
    ClusterInfo,
)
from aardwolf.protocol.T125.infopacket import INFO_FLAG, TS_INFO_PACKET
from aardwolf.protocol.T125.MCSPDU_ver_2 import MCSPDU_ver_2
from aardwolf.protocol.T128.clientconfirmactivepdu import TS_CAPS_SET, TS_CONFIRM_ACTIVE_PDU
from aardwolf.protocol.T128.inputeventpdu import TS_SHAREDATAHEADER
from aardwolf.protocol.T128.security import SEC_HDR_FLAG, TS_SECURITY_HEADER
from aardwolf.protocol.T128.share import TS_SHARECONTROLHEADER
from aardwolf.protocol.x224.constants import FAIL_CODE, SUPP_PROTOCOLS
from aardwolf.protocol.x224.server.connectionconfirm import RDP_NEG_FAILURE
from asysocks.unicomm.common.connection import UniConnection

from lucid_recorder.rdp import wire
from lucid_recorder.rdp.config import CaptureConfig
from lucid_recorder.rdp.errors import (
    AuthenticationError,
    CaptureError,
    ConnectError,
    ProtocolError,
    StepTimeoutError,
    TlsVerificationError,
    UnsupportedAardwolfError,
)
from lucid_recorder.rdp.events import (
    Connected,
    DesktopResize,
    Disconnected,
    Event,
)
from lucid_recorder.rdp.mcs import decode_domain_pdu
from lucid_recorder.rdp.settings import (
    client_capabilities,
    client_core_data,
    credential,
    iosettings,
)
from lucid_recorder.rdp.tls import client_context, verify_peer
from lucid_recorder.rdp.transport import BoundedTPKTPacketizer, HardenedConnection, one_line
from lucid_recorder.rdp.updates import FastPathPacket, UpdateDecoder

log = logging.getLogger(__name__)

SUPPORTED_AARDWOLF_VERSION = "0.2.16"
# aardwolf's name-mangled members this class reads or calls.
_P = "_RDPConnection__"
_REQUIRED_PRIVATE = ("attach_user", "send_userdata", "handle_license")
SERVER_CHANNEL_ID = 0x03EA
MCS_USERCHANNEL_BASE = 1001

WireTap = Callable[[str, bytes], None]


def installed_aardwolf_version() -> str:
    return str(_aardwolf_version)


def check_aardwolf_version(found: str | None = None) -> None:
    """Refuse any aardwolf but the one the fixes were written and tested against."""
    version = installed_aardwolf_version() if found is None else found
    if version != SUPPORTED_AARDWOLF_VERSION:
        raise UnsupportedAardwolfError(
            f"lucid_recorder.rdp.compat is written for aardwolf {SUPPORTED_AARDWOLF_VERSION}, "
            f"but {version} is installed. Its fixes replace steps of aardwolf's RDPConnection; "
            "re-run tests/unit/test_rdp_compat.py and the stack capture test against the new "
            "version before changing the pin."
        )
    missing = [name for name in _REQUIRED_PRIVATE if not hasattr(RDPConnection, _P + name)]
    if missing:
        raise UnsupportedAardwolfError(f"aardwolf's RDPConnection lacks {missing}")


@functools.cache
def _codecs() -> tuple[Any, Any, Any]:
    """T.125 BER and PER, T.124 PER: compiled once per process (aardwolf does it per call)."""
    return (asn1tools.compile_string(MCSPDU_ver_2, "ber"),
            asn1tools.compile_string(MCSPDU_ver_2, "per"),
            asn1tools.compile_string(GCCPDU, "per"))


class CompatRDPConnection(RDPConnection):
    """aardwolf's RDPConnection with the xrdp / strict-server fixes; see the module docstring.

    Decoded updates go to `events` as lucid events, stamped by `clock`.
    """

    def __init__(self, config: CaptureConfig, events: asyncio.Queue[list[Event]],
                 clock: Callable[[], int], wire_tap: WireTap | None = None) -> None:
        check_aardwolf_version()
        # aardwolf times the licensing phase with target.timeout: a second
        # longer than the step, so the step's own timeout (and error) decides.
        target = RDPTarget(ip=config.host, port=config.port, hostname=config.host,
                           timeout=int(config.step_timeout) + 1,
                           domain=config.domain or None)
        super().__init__(target, credential(config), iosettings(config))
        self.config = config
        self.events = events
        self.clock = clock
        self.wire_tap = wire_tap
        self.server_cert_sha256 = ""
        self.share_id = 0x000103EA
        self.desktop = (0, config.width, config.height)  # (bpp, width, height)
        self.closed_reason: str | None = None
        self.connected_ns = 0
        self.reader_error: CaptureError | None = None
        self.closed = asyncio.Event()
        self.updates = UpdateDecoder(events, clock, self.iosettings.fastpath_max_request_size,
                                     self._reactivate)
        self._active = False
        self._dispatch_lock = asyncio.Lock()
        self._reader_task: asyncio.Task[None] | None = None

    @property
    def stats(self) -> dict[str, int]:
        """Counters of what arrived: bitmap_updates, rects, bitmap_bytes, pointer_updates."""
        return self.updates.stats

    @property
    def logged_on(self) -> asyncio.Event:
        """Set once the server confirms a logon (Save Session Info PDU)."""
        return self.updates.logged_on

    # aardwolf's private state, by its mangled names.

    @property
    def transport(self) -> UniConnection:
        return self._RDPConnection__connection

    @property
    def user_channel_id(self) -> int:
        """The MCS user channel id, which is also this client's pduSource.

        aardwolf's T.125 ASN.1 declares UserId as 0..65535 where T.125 has
        DynamicChannelId (1001..65535), so the PER codec reads and writes the
        initiator without its 1001 offset: `_initiator` holds id - 1001. That
        is harmless where the codec both reads and writes it (the initiator
        fields), but a channel id field carries the real id.
        """
        return self._initiator + MCS_USERCHANNEL_BASE

    @property
    def io_channel(self) -> MCSChannel:
        return self._RDPConnection__joined_channels["MCS"]

    # The connection sequence (1.3.1.1).

    async def establish(self) -> Connected:
        """Run the whole connection sequence; raise a typed CaptureError on failure."""
        try:
            await self._open_tcp()
            if not await self._step("X.224 negotiation", self._negotiate(nla=False)):
                # The server demands NLA: a new connection that offers CredSSP.
                await self._close_transport()
                await self._open_tcp()
                await self._step("X.224 negotiation", self._negotiate(nla=True))
            await self._step("TLS handshake", self._start_tls())
            if self.x224_protocol & (SUPP_PROTOCOLS.HYBRID | SUPP_PROTOCOLS.HYBRID_EX):
                await self._step("NLA (CredSSP)", self._nla())
            ber, per, gcc = _codecs()
            self._RDPConnection__t125_ber_codec = ber
            self._RDPConnection__t124_codec = gcc
            self._t125_per_codec = per
            await self._step("MCS Connect", self._mcs_connect())
            await self._step("MCS Erect Domain", self._erect_domain())
            await self._step("MCS Attach User", self._RDPConnection__attach_user())
            await self._step("MCS Channel Join", self._join_channels())
            await self._step("Client Info PDU", self._RDPConnection__send_userdata())
            await self._step("licensing", self._RDPConnection__handle_license())
            await self._step("capability exchange", self._activate())
        except BaseException:
            await self.close()
            raise
        bpp, width, height = self.desktop
        nla = bool(self.x224_protocol & (SUPP_PROTOCOLS.HYBRID | SUPP_PROTOCOLS.HYBRID_EX))
        return Connected(self.connected_ns, width, height, bpp, self.server_cert_sha256,
                         self.config.tls.mode, credentials_checked=nla)

    async def connect(self, auth_only: bool = False) -> tuple[bool | None, Exception | None]:
        """aardwolf's signature: (True, None) or (None, error)."""
        if auth_only:
            return None, NotImplementedError("auth_only is not supported by the capture client")
        try:
            await self.establish()
        except CaptureError as exc:
            return None, exc
        return True, None

    async def _step(self, name: str, step: Awaitable[object]) -> object:
        """One network step under the step timeout; aardwolf's (ok, err) results raise."""
        timeout = self.config.step_timeout
        try:
            result = await asyncio.wait_for(step, timeout)
        except TimeoutError as exc:
            raise StepTimeoutError(f"{name}: no answer from the server in {timeout:g} s") from exc
        except CaptureError as exc:
            _raise_in_step(name, exc)
        except Exception as exc:
            # aardwolf's and asn1tools' parsers raise whatever they meet
            # (IndexError, asn1tools.DecodeError, a bare Exception) on bytes
            # they cannot read: the server broke the protocol.
            log.debug("%s: undecodable server data", name, exc_info=True)
            raise ProtocolError(f"{name}: undecodable data from the server: "
                                f"{type(exc).__name__}: {one_line(exc)}") from exc
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Exception):
            error = result[1]
            if isinstance(error, CaptureError):
                _raise_in_step(name, error)
            raise ProtocolError(f"{name} failed: {one_line(error)}") from error
        return result

    async def _open_tcp(self) -> None:
        host, port, timeout = self.config.host, self.config.port, self.config.connect_timeout
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError as exc:
            raise ConnectError(f"no TCP connection to {host}:{port} within {timeout:g} s") from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            _enable_keepalive(sock)
        self._RDPConnection__connection = HardenedConnection(reader, writer,
                                                             self.config.step_timeout)
        self._x224net = X224Network(self.transport)

    async def _negotiate(self, nla: bool) -> bool:
        """X.224 Connection Request / Confirm; False if the server demands NLA (CredSSP).

        TLS alone is offered first, CredSSP only when the server answers
        HYBRID_REQUIRED_BY_SERVER: NLA when the server demands it, and never
        the legacy RDP security layer, which cannot authenticate the server.
        """
        offer = SUPP_PROTOCOLS.SSL
        if nla:
            offer |= SUPP_PROTOCOLS.HYBRID | SUPP_PROTOCOLS.HYBRID_EX
        self.client_x224_supported_protocols = offer
        reply, err = await self._x224net.client_negotiate(
            0, offer, to_raise=False, cookie_identifier=self.config.username or None)
        if err is not None:
            raise ConnectError(f"X.224 negotiation failed: {one_line(err)}") from err
        if reply is None:
            raise ConnectError("the server closed the connection during X.224 negotiation")
        if reply.rdpNegData is None:
            raise TlsVerificationError(
                "the server offers only the legacy RDP security layer, which cannot "
                "authenticate it; refusing")
        if isinstance(reply.rdpNegData, RDP_NEG_FAILURE):
            code = reply.rdpNegData.failureCode
            if code is FAIL_CODE.HYBRID_REQUIRED_BY_SERVER and not nla:
                return False
            if code is FAIL_CODE.SSL_NOT_ALLOWED_BY_SERVER:
                raise TlsVerificationError(
                    "the server allows only the legacy RDP security layer, which cannot "
                    "authenticate it; refusing")
            raise ConnectError(f"the server refused the connection request: {code.name}")
        self.x224_connection_reply = reply.rdpNegData
        self.x224_protocol = SUPP_PROTOCOLS(reply.rdpNegData.selectedProtocol)
        self.x224_flag = reply.rdpNegData.flags
        return True

    async def _start_tls(self) -> None:
        tls = self.config.tls
        try:
            await self.transport.wrap_ssl(ssl_ctx=client_context(tls, self.config.host))
        except ssl.SSLCertVerificationError as exc:
            raise TlsVerificationError(
                f"server certificate failed {tls.mode.value} verification: {exc.verify_message}"
            ) from exc
        except (ssl.SSLError, OSError) as exc:
            raise ConnectError(f"TLS handshake failed: {one_line(exc)}") from exc
        except Exception as exc:  # asysocks signals a closed peer with a bare Exception
            raise ConnectError(f"TLS handshake failed: {one_line(exc)}") from exc
        self.server_cert_sha256 = verify_peer(tls, self.transport.get_peer_certificate())

    async def _nla(self) -> None:
        _ok, err = await self.credssp_auth()
        if err is not None:
            raise AuthenticationError(f"NLA (CredSSP) authentication failed: {err}") from err
        self.transport.change_packetizer(BoundedTPKTPacketizer())

    async def _mcs_connect(self) -> None:
        """MCS Connect Initial / Response with this client's core data (true colour)."""
        ber, _per, gcc = _codecs()
        user_data = TS_UD()
        security = TS_UD_CS_SEC()
        security.encryptionMethods = ENCRYPTION_FLAG.FRENCH
        security.extEncryptionMethods = ENCRYPTION_FLAG.FRENCH
        cluster = TS_UD_CS_CLUSTER()
        cluster.RedirectedSessionID = 0
        cluster.Flags = 8 | 4 | ClusterInfo.REDIRECTION_SUPPORTED
        user_data.userdata = {
            TS_UD_TYPE.CS_CORE: client_core_data(self.config, self.config.width,
                                                 self.config.height, self.x224_protocol),
            TS_UD_TYPE.CS_SECURITY: security,
            TS_UD_TYPE.CS_CLUSTER: cluster,
            TS_UD_TYPE.CS_NET: TS_UD_CS_NET(),
        }
        conference = gcc.encode("ConnectGCCPDU", ("conferenceCreateRequest", {
            "conferenceName": {"numeric": "0"}, "lockedConference": False,
            "listedConference": False, "conductibleConference": False,
            "terminationMethod": "automatic",
            "userData": [{"key": ("h221NonStandard", b"Duca"), "value": user_data.to_bytes()}],
        }))
        connect_data = gcc.encode("ConnectData", {
            "t124Identifier": ("object", "0.0.20.124.0.1"), "connectPDU": conference})

        def domain(channels: int, users: int, tokens: int, size: int) -> dict[str, int]:
            return {"maxChannelIds": channels, "maxUserIds": users, "maxTokenIds": tokens,
                    "numPriorities": 1, "minThroughput": 0, "maxHeight": 1,
                    "maxMCSPDUsize": size, "protocolVersion": 2}

        initial = ber.encode("ConnectMCSPDU", ("connect-initial", {
            "callingDomainSelector": b"\x01", "calledDomainSelector": b"\x01",
            "upwardFlag": True, "targetParameters": domain(34, 2, 0, 65535),
            "minimumParameters": domain(1, 1, 1, 1056),
            "maximumParameters": domain(65535, 64535, 65535, 65535),
            "userData": connect_data}))
        await self._x224net.write(bytes(initial))
        response = await self._x224net.read()
        if response is None:
            raise ProtocolError("the server closed the connection after MCS Connect Initial")
        raw = response.data
        kind, body = ber.decode("ConnectMCSPDU", raw)
        if kind != "connect-response" or body["result"] != "rt-successful":
            raise ProtocolError(f"MCS Connect Response: {kind} {body.get('result')}")
        t124 = gcc.decode("ConnectData", body["userData"])
        # As aardwolf does: the GCC PER decoder stops short of the user data
        # it needs, so the rest of the raw response is appended.
        pdu = t124["connectPDU"]
        rest = raw[raw.find(pdu) + len(pdu):]
        server = gcc.decode("ConnectGCCPDU", pdu + rest)
        server_data = TS_SC.from_bytes(server[1]["userData"][0]["value"]).serverdata
        self._RDPConnection__server_connect_pdu = server_data
        channel = MCSChannel()
        channel.channel_id = server_data[TS_UD_TYPE.SC_NET].MCSChannelId
        self._RDPConnection__joined_channels["MCS"] = channel
        self._RDPConnection__channel_id_lookup[channel.channel_id] = channel

    async def _erect_domain(self) -> None:
        """Fix 1: the PER bytes servers parse (see wire.ERECT_DOMAIN_REQUEST)."""
        await self._x224net.write(wire.ERECT_DOMAIN_REQUEST)

    async def _join_channels(self) -> None:
        """Fix 2: join the user channel (the initiator id), then the I/O channel.

        MCS gives every attached user a channel of its own; xrdp waits for the
        join of that channel first and fails the sequence on anything else.
        aardwolf 0.2.16 joins only the I/O and virtual channels.
        """
        per = self._t125_per_codec
        for channel_id in (self.user_channel_id, self.io_channel.channel_id):
            request = per.encode("DomainMCSPDU", ("channelJoinRequest", {
                "initiator": self._initiator, "channelId": channel_id}))
            await self._x224net.write(bytes(request))
            response = await self._x224net.read()
            if response is None:
                raise ProtocolError(f"the server closed the connection joining {channel_id}")
            kind, body = per.decode("DomainMCSPDU", response.data)
            if kind != "channelJoinConfirm" or body["result"] != "rt-successful":
                raise ProtocolError(f"channel {channel_id} join refused: {kind} {body}")
        self._reader_task = asyncio.create_task(self._read_loop(), name="rdp-reader")

    async def handle_out_data(self, dataobj: Any, sec_hdr: TS_SECURITY_HEADER | None,
                              datacontrol_hdr: TS_SHAREDATAHEADER | None,
                              sharecontrol_hdr: TS_SHARECONTROLHEADER | None,
                              channel_id: int, is_fastpath: bool
                              ) -> tuple[bool | None, Exception | None]:
        """Every slow-path PDU aardwolf's own steps send goes through here.

        Fix 5: the Share Control / Share Data Headers come from wire.py, with
        totalLength = payload + 18 (aardwolf 0.2.16: + 24).
        Fix 6: a Client Info PDU carrying a password gets INFO_AUTOLOGON, so
        xrdp logs on with it instead of drawing its login dialog.
        Errors raise instead of returning (None, err) as aardwolf's does: its
        own callers (the Client Info step among them) discard the result, and
        catch exceptions into their own (None, err).
        """
        if is_fastpath:
            raise NotImplementedError("fast-path input is not used")
        if sec_hdr is not None and SEC_HDR_FLAG.ENCRYPT in sec_hdr.flags:
            raise ProtocolError("legacy RDP encryption is never negotiated")
        if isinstance(dataobj, TS_INFO_PACKET) and dataobj.Password:
            dataobj.flags |= INFO_FLAG.AUTOLOGON
        payload = dataobj.to_bytes()
        if sharecontrol_hdr is not None:
            payload = wire.share_control_pdu(sharecontrol_hdr.pduType.value,
                                             self.user_channel_id, payload)
        elif datacontrol_hdr is not None:
            payload = wire.share_data_pdu(self.share_id, self.user_channel_id,
                                          datacontrol_hdr.pduType2.value, payload,
                                          datacontrol_hdr.streamID.value)
        if sec_hdr is not None:
            payload = sec_hdr.to_bytes() + payload
        await self._send(channel_id, payload)
        return True, None

    async def _send(self, channel_id: int, user_data: bytes) -> None:
        request = self._t125_per_codec.encode("DomainMCSPDU", ("sendDataRequest", {
            "initiator": self._initiator, "channelId": channel_id, "dataPriority": "high",
            "segmentation": (b"\xc0", 2), "userData": user_data}))
        await self._x224net.write(request)

    async def _send_data(self, pdu_type2: int, payload: bytes) -> None:
        await self._send(self.io_channel.channel_id, wire.share_data_pdu(
            self.share_id, self.user_channel_id, pdu_type2, payload))

    # Capability exchange and finalization (1.3.1.1, phases 9 - 10).

    async def _activate(self) -> None:
        demand = await self._await_demand_active()
        await self._confirm_active(demand)
        # Before any update is decoded: Connected comes first on the timeline.
        self.connected_ns = self.clock()
        async with self._dispatch_lock:
            self._active = True
            queue = self.io_channel.out_queue
            while not queue.empty():
                data, err = queue.get_nowait()
                if err is not None:
                    raise err
                await self.updates.io_data(data)
        await self._await_font_map()

    async def _await_font_map(self) -> None:
        """The server's Font Map PDU ends the connection sequence (1.3.1.1, phase 10).

        Waiting for it (within the step timeout) means a server that stops
        answering anywhere in the sequence fails the connection; silence
        after it is an idle desktop, which is not limited.
        """
        font_map = asyncio.ensure_future(self.updates.font_map.wait())
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({font_map, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            font_map.cancel()
            closed.cancel()
        if not self.updates.font_map.is_set():
            raise self.reader_error or ProtocolError(
                f"{self.closed_reason or 'the server closed the connection'} "
                "before the Font Map PDU")

    async def _await_demand_active(self) -> wire.DemandActive:
        pending = self._RDPConnection__pending_mcs_data
        self._RDPConnection__pending_mcs_data = None
        while True:
            data, err = pending if pending is not None else await self.io_channel.out_queue.get()
            pending = None
            if err is not None:
                raise err
            if isinstance(data, FastPathPacket):
                raise ProtocolError("fast-path output before the Demand Active PDU")
            for pdu in wire.iter_share_pdus(data):
                if pdu.pdu_type == wire.PDUTYPE_DEMANDACTIVE:
                    if self.wire_tap is not None:
                        self.wire_tap("demand_active", data)
                    return wire.parse_demand_active(pdu.body)
                self.updates.note_pdu(pdu)

    async def _confirm_active(self, demand: wire.DemandActive) -> None:
        """Confirm Active, then the client's finalization PDUs at once.

        Fix 4: MS-RDPBCGR 1.3.1.1 has the client send Synchronize, Control
        (Cooperate), Control (Request Control) and Font List right after
        Confirm Active. aardwolf 0.2.16 first waits for the server's
        Synchronize, which xrdp only sends after the client's Font List: both
        sides wait for ever.
        """
        bpp, width, height = demand.desktop
        self.share_id = demand.share_id
        self.desktop = (bpp, width, height)
        self.updates.desktop = (width, height)
        confirm = TS_CONFIRM_ACTIVE_PDU()
        confirm.shareID = demand.share_id
        confirm.originatorID = SERVER_CHANNEL_ID
        for cap in client_capabilities(self.iosettings, bpp, width, height):
            confirm.capabilitySets.append(TS_CAPS_SET.from_capability(cap))
        await self._send(self.io_channel.channel_id, wire.share_control_pdu(
            wire.PDUTYPE_CONFIRMACTIVE, self.user_channel_id, confirm.to_bytes()))
        await self._send_data(wire.PDUTYPE2_SYNCHRONIZE,
                              wire.synchronize_payload(SERVER_CHANNEL_ID))
        await self._send_data(wire.PDUTYPE2_CONTROL,
                              wire.control_payload(wire.CTRLACTION_COOPERATE))
        await self._send_data(wire.PDUTYPE2_CONTROL,
                              wire.control_payload(wire.CTRLACTION_REQUEST_CONTROL))
        await self._send_data(wire.PDUTYPE2_FONTLIST, wire.font_list_payload())

    # Receiving.

    async def _read_loop(self) -> None:
        """Read every PDU; before activation park I/O data for the sequence, then decode it."""
        reason = "the server closed the connection"
        cancelled = False
        try:
            self.transport.packetizer_control("X224")
            async for is_fastpath, packet in self.transport.read():
                if packet is None:
                    break
                if is_fastpath:
                    if self.wire_tap is not None:
                        self.wire_tap("fast", packet)
                    await self._dispatch(FastPathPacket(packet))
                    continue
                kind, body = decode_domain_pdu(self._t125_per_codec, packet.data)
                if kind == "disconnectProviderUltimatum":
                    reason = f"the server disconnected ({body.get('reason')})"
                    break
                if kind != "sendDataIndication":
                    log.debug("ignoring MCS %s", kind)
                    continue
                if body["channelId"] != self.io_channel.channel_id:
                    log.debug("ignoring data on MCS channel %s", body["channelId"])
                    continue
                if self.wire_tap is not None:
                    self.wire_tap("slow", body["userData"])
                await self._dispatch(body["userData"])
        except asyncio.CancelledError:
            reason = "the capture was stopped"
            cancelled = True
            raise
        except CaptureError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.reader_error = exc
        except (ValueError, KeyError, struct.error, asn1tools.Error,
                FastPathProtocolError) as exc:
            reason = f"undecodable data from the server: {one_line(exc)}"
            self.reader_error = ProtocolError(reason)
            self.reader_error.__cause__ = exc
        except Exception as exc:
            # A bug here must not end the capture as if the server had hung up.
            reason = f"internal error: {type(exc).__name__}: {one_line(exc)}"
            self.reader_error = ProtocolError(reason)
            self.reader_error.__cause__ = exc
            raise
        finally:
            if self.updates.error_info:
                reason += "; " + self.updates.error_info_text()
            self.closed_reason = reason
            # Wake a connection step that waits for I/O data.
            self.io_channel.out_queue.put_nowait((None, self.reader_error
                                                   or ProtocolError(reason)))
            self.closed.set()
            if self._active and not cancelled:
                await self.events.put([Disconnected(self.clock(), reason)])

    async def _dispatch(self, data: bytes) -> None:
        async with self._dispatch_lock:
            if self._active:
                await self.updates.io_data(data)
            else:
                await self.io_channel.out_queue.put((data, None))

    async def _reactivate(self, demand: wire.DemandActive) -> None:
        """Deactivation-Reactivation (1.3.1.3): a new size or depth, then the same session."""
        before = self.desktop
        await self._confirm_active(demand)
        if self.desktop[1:] != before[1:]:
            await self.events.put([DesktopResize(self.clock(), self.desktop[1],
                                                 self.desktop[2])])
        if self.desktop[0] != before[0]:
            log.info("server changed colour depth from %s to %s bpp", before[0], self.desktop[0])

    # Closing.

    async def close(self) -> None:
        """Stop reading and close the socket; never waits more than a few seconds."""
        task, self._reader_task = self._reader_task, None
        if task is not None:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # also retrieves its error
        await self._close_transport()

    async def _close_transport(self) -> None:
        connection = self._RDPConnection__connection
        if connection is None or connection.writer is None:
            return
        if self._active and not connection.writer.is_closing():
            ultimatum = self._t125_per_codec.encode("DomainMCSPDU", (
                "disconnectProviderUltimatum", {"reason": "rn-user-requested"}))
            try:
                await asyncio.wait_for(self._x224net.write(ultimatum), 2)
            except (OSError, TimeoutError) as exc:
                log.debug("disconnect ultimatum not sent: %s", exc)
        connection.writer.close()
        try:
            await asyncio.wait_for(connection.writer.wait_closed(), 2)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.debug("socket close: %s", exc)
        self._RDPConnection__connection = None

    async def terminate(self) -> tuple[bool | None, Exception | None]:
        """aardwolf's terminate() waits for a shutdown reply without a timeout; close instead."""
        await self.close()
        self.disconnected_evt.set()
        return True, None

    def disconnected_event(self) -> Disconnected:
        return Disconnected(self.clock(), self.closed_reason or "the capture was stopped")


def _raise_in_step(name: str, error: CaptureError) -> NoReturn:
    """Raise the error, its message naming the step unless it does already."""
    if str(error).startswith(name):
        raise error
    raise type(error)(f"{name}: {error}") from error


def _enable_keepalive(sock: socket.socket) -> None:
    """Notice a peer that vanished without a FIN within about a minute."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
