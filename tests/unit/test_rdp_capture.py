"""capture() against small fake servers (timeouts, TLS trust), and the reconnect wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator

import pytest

from lucid_recorder.rdp.capture import Backoff, MonotonicClock, capture, capture_with_reconnect
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig, normalize_fingerprint
from lucid_recorder.rdp.errors import (
    AuthenticationError,
    ConnectError,
    ProtocolError,
    StepTimeoutError,
    TlsVerificationError,
)
from lucid_recorder.rdp.events import (
    Connected,
    Disconnected,
    Event,
    Gap,
    Idle,
    Rect,
    TlsMode,
)
from tests.rdp_peer import (
    CC_HYBRID,
    CC_LEGACY,
    CC_NEEDS_NLA,
    CC_RDP_ONLY,
    CertFiles,
    fake_server,
    read_tpkt,
    self_signed,
    tls_server,
)

# The module, not the function of the same name that lucid_recorder.rdp exports.
capture_module = importlib.import_module("lucid_recorder.rdp.capture")



@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A self-signed certificate for 127.0.0.1."""
    return self_signed(tmp_path_factory.mktemp("tls"))


def config(port: int, tls: TlsConfig | None = None, **kwargs: object) -> CaptureConfig:
    tls = tls or TlsConfig(mode=TlsMode.INSECURE)
    params: dict[str, object] = {"connect_timeout": 2.0, "step_timeout": 2.0, **kwargs}
    return CaptureConfig(host="127.0.0.1", port=port, username="u", password="p", tls=tls,
                         **params)  # type: ignore[arg-type]


async def first_event(cfg: CaptureConfig) -> Event:
    async with contextlib.aclosing(capture(cfg)) as stream:
        async for event in stream:
            return event
    raise AssertionError("capture ended without an event")


async def test_refused_port_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await first_event(config(port))
    assert time.monotonic() - started < 2


async def test_silent_server_times_out_the_step() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        await asyncio.sleep(10)

    async with fake_server(silent) as port:
        started = time.monotonic()
        with pytest.raises(StepTimeoutError, match=r"X\.224 negotiation"):
            await first_event(config(port, step_timeout=0.5))
        assert time.monotonic() - started < 3


async def test_legacy_rdp_security_is_refused() -> None:
    async def legacy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_tpkt(reader)
        writer.write(CC_LEGACY)
        await writer.drain()
        await reader.read(100)

    async with fake_server(legacy) as port:
        with pytest.raises(TlsVerificationError, match="legacy RDP security"):
            await first_event(config(port))


async def test_nla_is_offered_when_the_server_demands_it(
        server_cert: CertFiles) -> None:
    offers: list[int] = []
    context = server_cert.server_context()

    async def needs_nla(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_tpkt(reader)
        offers.append(struct.unpack_from("<I", request, len(request) - 4)[0])
        if len(offers) == 1:
            writer.write(CC_NEEDS_NLA)
            await writer.drain()
            await reader.read(100)
            return
        writer.write(CC_HYBRID)
        await writer.drain()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.start_tls(context)
            await asyncio.wait_for(reader.read(4096), 5)  # the client's first CredSSP token
        writer.transport.abort()

    async with fake_server(needs_nla) as port:
        with pytest.raises(AuthenticationError, match="NLA"):
            await first_event(config(port))
    # TLS alone first; then TLS, CredSSP and CredSSP with Early User Authorization.
    assert offers == [0x1, 0x1 | 0x2 | 0x8]


async def test_server_without_tls_is_refused() -> None:
    async def rdp_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_tpkt(reader)
        writer.write(CC_RDP_ONLY)
        await writer.drain()
        await reader.read(100)

    async with fake_server(rdp_only) as port:
        with pytest.raises(TlsVerificationError, match="only the legacy RDP security"):
            await first_event(config(port))


async def test_wrong_fingerprint_sends_nothing_after_the_handshake(
        server_cert: CertFiles) -> None:
    received: list[bytes] = []
    async with fake_server(tls_server(server_cert, received)) as port:
        tls = TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256="ab" * 32)
        with pytest.raises(TlsVerificationError, match=server_cert.sha256):
            await first_event(config(port, tls))
        await asyncio.sleep(0.2)
    assert received == [b""]


@pytest.mark.parametrize("mode", ["fingerprint", "colon-fingerprint", "ca-file"])
async def test_trusted_server_gets_past_tls(server_cert: CertFiles,
                                            mode: str) -> None:
    received: list[bytes] = []
    fingerprint = server_cert.sha256
    tls = {
        "fingerprint": TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256=fingerprint),
        "colon-fingerprint": TlsConfig(
            mode=TlsMode.FINGERPRINT,
            fingerprint_sha256=":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()),
        "ca-file": TlsConfig(mode=TlsMode.VERIFY, ca_file=server_cert.cert),
    }[mode]
    async with fake_server(tls_server(server_cert, received)) as port:
        # The fake server hangs up after the first PDU: MCS Connect Initial.
        with pytest.raises(ProtocolError, match="MCS Connect"):
            await first_event(config(port, tls))
    assert received and received[0][:1] == b"\x03"  # a TPKT: the client went on


@pytest.mark.parametrize("server_name", [None, "other.example"])
async def test_verify_mode_rejects_untrusted_or_misnamed(
        server_cert: CertFiles, server_name: str | None) -> None:
    received: list[bytes] = []
    # System roots do not know the fake CA; with its own CA the name must still match.
    tls = (TlsConfig(mode=TlsMode.VERIFY) if server_name is None else
           TlsConfig(mode=TlsMode.VERIFY, ca_file=server_cert.cert, server_name=server_name))
    async with fake_server(tls_server(server_cert, received)) as port:
        with pytest.raises(TlsVerificationError, match="Verify verification"):
            await first_event(config(port, tls))
        await asyncio.sleep(0.2)
    assert received == [b""]


def test_fingerprint_spellings() -> None:
    digest = "ab" * 32
    assert normalize_fingerprint("AB:" * 31 + "AB") == digest
    with pytest.raises(ValueError, match="64 hex digits"):
        normalize_fingerprint("ab" * 31)
    with pytest.raises(ValueError, match="needs fingerprint_sha256"):
        TlsConfig(mode=TlsMode.FINGERPRINT)
    with pytest.raises(ValueError, match="only used with mode Fingerprint"):
        TlsConfig(mode=TlsMode.VERIFY, fingerprint_sha256=digest)


def test_config_hides_the_password_and_checks_values() -> None:
    cfg = CaptureConfig(host="h", password="hunter2")
    assert "hunter2" not in repr(cfg)
    with pytest.raises(ValueError, match="color_depth"):
        CaptureConfig(host="h", color_depth=8)
    with pytest.raises(ValueError, match="port"):
        CaptureConfig(host="h", port=0)


# The reconnect wrapper, over a scripted capture().


def test_monotonic_clock_never_goes_back() -> None:
    clock = MonotonicClock()
    values = [clock() for _ in range(1000)]
    assert values == sorted(values)


def test_backoff_grows_to_its_maximum() -> None:
    backoff = Backoff(initial=1, factor=2, maximum=5)
    assert [backoff.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


Script = list[list[Event] | Exception]


def scripted(monkeypatch: pytest.MonkeyPatch, script: Script) -> list[float]:
    """Replace one capture session per script entry; return the recorded sleeps."""
    sessions = iter(script)
    sleeps: list[float] = []

    async def fake_session(_config: CaptureConfig, clock: MonotonicClock
                           ) -> AsyncIterator[Event]:
        step = next(sessions)
        if isinstance(step, Exception):
            raise step
        for event in step:
            yield event

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(capture_module, "_session", fake_session)
    monkeypatch.setattr(capture_module.asyncio, "sleep", fake_sleep)
    return sleeps


def connected(t: int) -> Connected:
    return Connected(t, 1024, 768, 32, "00", TlsMode.INSECURE)


async def collect(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


async def test_reconnect_marks_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = scripted(monkeypatch, [
        [connected(10), Rect(11, 0, 0, 1, 1, b"\0\0\0"), Disconnected(12, "dropped")],
        ConnectError("refused"),
        [connected(20), Disconnected(21, "bye")],
        AuthenticationError("stop here"),
    ])
    stream = capture_with_reconnect(CaptureConfig(host="h"), max_attempts=3,
                                    backoff=Backoff(initial=1, factor=3, maximum=60))
    with pytest.raises(AuthenticationError):
        await collect_into(stream, out := [])
    assert out[:3] == [connected(10), Rect(11, 0, 0, 1, 1, b"\0\0\0"), Disconnected(12, "dropped")]
    assert out[3] == Gap(20, 12, 20, "dropped")
    assert out[4:] == [connected(20), Disconnected(21, "bye")]
    # After each end of a session, then growing while attempts fail.
    assert sleeps == [1, 3, 1]


async def collect_into(stream: AsyncIterator[Event], out: list[Event]) -> None:
    async for event in stream:
        out.append(event)


async def test_reconnect_gives_up_after_max_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = scripted(monkeypatch, [ConnectError("a"), StepTimeoutError("b"), ConnectError("c")])
    with pytest.raises(ConnectError, match="c"):
        await collect(capture_with_reconnect(CaptureConfig(host="h"), max_attempts=3,
                                             backoff=Backoff(initial=2, factor=2)))
    assert sleeps == [2, 4]


@pytest.mark.parametrize("error", [TlsVerificationError("pin"), AuthenticationError("pw")])
async def test_trust_and_credential_errors_are_not_retried(
        monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    sleeps = scripted(monkeypatch, [error, [connected(1)]])
    with pytest.raises(type(error)):
        await collect(capture_with_reconnect(CaptureConfig(host="h"), max_attempts=5))
    assert sleeps == []


class QuietConnection:
    """What _next_events reads of a connection: its config and the logon flag."""

    def __init__(self, cfg: CaptureConfig) -> None:
        self.config = cfg
        self.logged_on = asyncio.Event()


async def test_idle_comes_after_idle_seconds_without_an_update() -> None:
    events: asyncio.Queue[list[Event]] = asyncio.Queue()
    clock = MonotonicClock()
    connection = QuietConnection(config(1, idle_seconds=0.05))
    began = time.monotonic()
    batch = await capture_module._next_events(connection, events, None, clock)
    assert [type(event) for event in batch] == [Idle]
    assert time.monotonic() - began >= 0.04
    # An update waiting is returned at once, and the queue is left intact by the timeout.
    rect = Rect(clock(), 0, 0, 1, 1, b"\0\0\0")
    events.put_nowait([rect])
    assert await capture_module._next_events(connection, events, None, clock) == [rect]
    later = asyncio.get_running_loop().call_later(0.01, events.put_nowait, [rect])
    assert await capture_module._next_events(connection, events, None, clock) == [rect]
    later.cancel()


async def test_without_idle_seconds_the_wait_has_no_timer() -> None:
    events: asyncio.Queue[list[Event]] = asyncio.Queue()
    connection = QuietConnection(config(1))
    waiting = asyncio.ensure_future(
        capture_module._next_events(connection, events, None, MonotonicClock()))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_idle_seconds_must_be_positive() -> None:
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="idle_seconds must be positive"):
            config(1, idle_seconds=bad)
