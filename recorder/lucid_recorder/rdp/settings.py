"""What this client tells the server about itself: settings, core data, capabilities."""

from __future__ import annotations

from aardwolf.commons.iosettings import RDPIOSettings
from aardwolf.protocol.pdu.capabilities.bitmap import TS_BITMAP_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.bitmapcache import TS_BITMAPCACHE_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.brush import TS_BRUSH_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.general import (
    EXTRAFLAG,
    OSMAJORTYPE,
    OSMINORTYPE,
    TS_GENERAL_CAPABILITYSET,
)
from aardwolf.protocol.pdu.capabilities.glyph import TS_GLYPHCACHE_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.input import INPUT_FLAG, TS_INPUT_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.multifragmentupdate import (
    TS_MULTIFRAGMENTUPDATE_CAPABILITYSET,
)
from aardwolf.protocol.pdu.capabilities.offscreen import TS_OFFSCREEN_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.order import ORDERFLAG, TS_ORDER_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.pointer import TS_POINTER_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.sound import TS_SOUND_CAPABILITYSET
from aardwolf.protocol.pdu.capabilities.virtualchannel import (
    TS_VIRTUALCHANNEL_CAPABILITYSET,
    VCCAPS,
)
from aardwolf.protocol.T124.userdata.clientcoredata import TS_UD_CS_CORE
from aardwolf.protocol.T124.userdata.constants import (
    COLOR_DEPTH,
    CONNECTION_TYPE,
    HIGH_COLOR_DEPTH,
    RNS_UD_CS,
    SUPPORTED_COLOR_DEPTH,
)
from aardwolf.protocol.x224.constants import SUPP_PROTOCOLS
from asyauth.common.constants import asyauthProtocol, asyauthSecret
from asyauth.common.credentials import UniCredential

from lucid_recorder.rdp.config import CaptureConfig
from lucid_recorder.rdp.pointer import POINTER_CACHE_SIZE


def iosettings(config: CaptureConfig) -> RDPIOSettings:
    """aardwolf's settings object for this capture."""
    settings = RDPIOSettings()
    settings.channels = []  # a recorder joins no virtual channel
    settings.vchannels = {}
    settings.clipboard = None
    settings.video_width = config.width
    settings.video_height = config.height
    # Fix 9: no bulk compression. Offered RDP 6.1, xrdp compresses, and
    # aardwolf's decompressor rejects its Data PDUs ("Decompressed packet
    # length does not match its declaration (16240 != 16254)"): xrdp writes
    # uncompressedLength as payload + 18, aardwolf expects payload + 4.
    # Without INFO_COMPRESSION in the Client Info PDU no server compresses.
    settings.bulk_compression_max_type = None
    # Ask the server for no visual changes: the recording shows what users see.
    settings.performance_flags = 0
    return settings


def credential(config: CaptureConfig) -> UniCredential:
    """The login, for the Client Info PDU or, when the server demands NLA, CredSSP (NTLM)."""
    return UniCredential(secret=config.password, username=config.username,
                         domain=config.domain or None, stype=asyauthSecret.PASSWORD,
                         protocol=asyauthProtocol.NTLM)


def client_core_data(config: CaptureConfig, width: int, height: int,
                     selected_protocol: SUPP_PROTOCOLS) -> TS_UD_CS_CORE:
    """Client Core Data (2.2.1.3.2) asking for the configured colour depth.

    True colour: 32 bpp cannot be written in highColorDepth; the client sets
    RNS_UD_CS_WANT_32BPP_SESSION with RNS_UD_32BPP_SUPPORT and keeps
    highColorDepth at 24, the fallback for servers without 32 bpp. aardwolf
    0.2.16 writes highColorDepth 16 when asked for 32, and fails on min 32.
    """
    core = TS_UD_CS_CORE()
    core.desktopWidth = width
    core.desktopHeight = height
    core.colorDepth = COLOR_DEPTH.COLOR_8BPP  # superseded by the fields below
    core.keyboardLayout = 1033
    core.clientBuild = 2600
    core.clientName = "lucid"
    core.imeFileName = ""
    core.clientProductId = 1
    core.serialNumber = 0
    early = RNS_UD_CS.SUPPORT_ERRINFO_PDU
    if config.color_depth == 16:
        core.postBeta2ColorDepth = COLOR_DEPTH.COLOR_16BPP_565
        core.highColorDepth = HIGH_COLOR_DEPTH.HIGH_COLOR_16BPP
        core.supportedColorDepths = SUPPORTED_COLOR_DEPTH.RNS_UD_16BPP_SUPPORT
    else:
        core.postBeta2ColorDepth = COLOR_DEPTH.COLOR_24BPP
        core.highColorDepth = HIGH_COLOR_DEPTH.HIGH_COLOR_24BPP
        core.supportedColorDepths = SUPPORTED_COLOR_DEPTH.RNS_UD_24BPP_SUPPORT
        if config.color_depth == 32:
            core.supportedColorDepths |= SUPPORTED_COLOR_DEPTH.RNS_UD_32BPP_SUPPORT
            early |= RNS_UD_CS.WANT_32BPP_SESSION
    core.earlyCapabilityFlags = early
    core.clientDigProductId = b"\x00" * 64
    core.connectionType = CONNECTION_TYPE.UNK
    core.pad1octet = b"\x00"
    core.serverSelectedProtocol = selected_protocol
    return core


def client_capabilities(settings: RDPIOSettings, bpp: int, width: int,
                    height: int) -> list[object]:
    """The Confirm Active PDU's capability sets for the desktop the server chose."""
    general = TS_GENERAL_CAPABILITYSET()
    general.osMajorType = OSMAJORTYPE.WINDOWS
    general.osMinorType = OSMINORTYPE.WINDOWS_NT
    general.extraFlags = (EXTRAFLAG.FASTPATH_OUTPUT_SUPPORTED
                          | EXTRAFLAG.NO_BITMAP_COMPRESSION_HDR
                          | EXTRAFLAG.LONG_CREDENTIALS_SUPPORTED)
    bitmap = TS_BITMAP_CAPABILITYSET()
    bitmap.preferredBitsPerPixel = bpp
    bitmap.desktopWidth = width
    bitmap.desktopHeight = height
    # Resizes arrive as Deactivate All + Demand Active (handled below).
    bitmap.desktopResizeFlag = True
    # drawingFlags keeps aardwolf's default: no lossy colour reduction or
    # chroma subsampling of 32 bpp bitmaps may be allowed.
    order = TS_ORDER_CAPABILITYSET()
    order.orderFlags = ORDERFLAG.ZEROBOUNDSDELTASSUPPORT | ORDERFLAG.NEGOTIATEORDERSUPPORT
    order.orderFlags |= ORDERFLAG.SOLIDPATTERNBRUSHONLY  # orderSupport stays all zero
    pointer = TS_POINTER_CAPABILITYSET()
    pointer.colorPointerFlag = True
    pointer.colorPointerCacheSize = pointer.pointerCacheSize = POINTER_CACHE_SIZE
    keyboard = TS_INPUT_CAPABILITYSET()
    keyboard.inputFlags = INPUT_FLAG.SCANCODES
    keyboard.keyboardLayout = settings.keyboard_layout
    keyboard.keyboardType = settings.keyboard_type
    keyboard.keyboardSubType = settings.keyboard_subtype
    keyboard.keyboardFunctionKey = settings.keyboard_functionkey
    channels = TS_VIRTUALCHANNEL_CAPABILITYSET()
    channels.flags = VCCAPS.COMPR_CS_8K | VCCAPS.COMPR_SC
    fragments = TS_MULTIFRAGMENTUPDATE_CAPABILITYSET()
    fragments.MaxRequestSize = settings.fastpath_max_request_size
    return [general, bitmap, order, TS_BITMAPCACHE_CAPABILITYSET(), pointer, keyboard,
            TS_BRUSH_CAPABILITYSET(), TS_GLYPHCACHE_CAPABILITYSET(),
            TS_OFFSCREEN_CAPABILITYSET(), channels, TS_SOUND_CAPABILITYSET(), fragments]
