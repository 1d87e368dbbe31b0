"""capture() against a hostile RDP server: a typed one-line error, in time, in bounded memory.

The peer (tests/rdp_peer.py) replays a real xrdp session up to a chosen step
of the connection sequence, then truncates, dribbles, stays silent, sends
garbage or bytes made to claim huge sizes. Every case asserts the error
type, that its message is one readable line naming the failure, an elapsed
bound of the configured timeouts plus slack (about not hanging, not speed),
and the peak resident memory the case added (Linux VmHWM, reset per case).
The cases that could allocate natively without bound run the capture in a
child process with an address-space limit, so a regression fails the test
instead of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucid_recorder.rdp.capture import capture
from lucid_recorder.rdp.compat import _codecs
from lucid_recorder.rdp.config import CaptureConfig, TlsConfig
from lucid_recorder.rdp.errors import (
    CaptureError,
    ConnectError,
    ProtocolError,
    StepTimeoutError,
    TlsVerificationError,
)
from lucid_recorder.rdp.events import Connected, Event, Rect, TlsMode
from tests.rdp_peer import (
    STAGES,
    CertFiles,
    Peer,
    fake_server,
    self_signed,
    send_data_indication,
    x224_data,
    xrdp_connect,
)

REPO = Path(__file__).resolve().parents[2]
STEP = 1.5  # the step timeout the cases configure
SLACK = 4.0  # scheduling noise on a loaded 2-core machine; a hang takes for ever
MIB = 2**20
# Peak resident memory a case may add. The largest legitimate buffer is one
# 1024x768 desktop's pixels (3 MiB) per queued event, and the event queue
# holds at most 32 MiB of them.
MEMORY_BOUND = 100 * MIB
PASSWORD = "hostile-test-password"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", autouse=True)
def _warm_codecs() -> None:
    # Compiling the ASN.1 codecs takes seconds once per process; not the peer's doing.
    _codecs()


def config(port: int, cert: CertFiles, **kwargs: object) -> CaptureConfig:
    params: dict[str, object] = {"connect_timeout": STEP, "step_timeout": STEP, **kwargs}
    tls = TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256=cert.sha256)
    return CaptureConfig(host="127.0.0.1", port=port, username="u", password=PASSWORD,
                         tls=params.pop("tls", tls), **params)  # type: ignore[arg-type]


class PeakMemory:
    """The peak resident memory added while in the block (VmHWM, reset on entry)."""

    def __enter__(self) -> PeakMemory:
        with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the high-water mark
            fh.write("5")
        self.start = _status_kib("VmRSS")
        self.added = 0
        return self

    def __exit__(self, *_exc: object) -> None:
        self.added = (_status_kib("VmHWM") - self.start) * 1024


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


@dataclass
class Outcome:
    events: list[Event]
    error: BaseException | None
    elapsed: float
    memory: int


async def run(peer: Peer, cert: CertFiles, *, max_seconds: float = STEP + SLACK + 10,
              **kwargs: object) -> Outcome:
    """Capture from the peer until the capture raises or ends (or max_seconds pass)."""
    events: list[Event] = []
    error: BaseException | None = None
    async with fake_server(peer.handle) as port:
        with PeakMemory() as memory:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max_seconds):
                    async with contextlib.aclosing(capture(config(port, cert, **kwargs))) as s:
                        async for event in s:
                            events.append(event)
            except CaptureError as exc:
                error = exc
            elapsed = time.monotonic() - started
    return Outcome(events, error, elapsed, memory.added)


def assert_clear(outcome: Outcome, kind: type[CaptureError], pattern: str,
                 bound: float = STEP + SLACK) -> None:
    """The typed error, one line naming the failure and no credential, in time, in memory."""
    error = outcome.error
    assert isinstance(error, kind), (outcome.error, outcome.events)
    message = str(error)
    assert "\n" not in message and 10 < len(message) < 400, message
    assert re.search(pattern, message), message
    assert PASSWORD not in message
    assert outcome.elapsed < bound, (outcome.elapsed, message)
    assert outcome.memory < MEMORY_BOUND, outcome.memory


# 1. Truncated PDUs: half of the server's PDU at each step, then the peer hangs up.

TRUNCATED = {
    "x224": (ConnectError, r"X\.224 negotiation.*middle of a PDU"),
    "tls": (ConnectError, r"TLS handshake failed"),
    "mcs": (ProtocolError, r"MCS Connect: .*middle of a PDU"),
    "attach": (ProtocolError, r"MCS Attach User: .*middle of a PDU"),
    "join": (ProtocolError, r"MCS Channel Join: .*middle of a PDU"),
    "license": (ProtocolError, r"licensing: .*middle of a PDU"),
    "demand": (ProtocolError, r"capability exchange: .*middle of a PDU"),
    "finalize": (ProtocolError, r"capability exchange: .*middle of a PDU"),
    "active": (ProtocolError, r"middle of a PDU"),
}


@pytest.mark.parametrize("stage", STAGES)
async def test_truncated_pdu_then_close(cert: CertFiles, stage: str) -> None:
    outcome = await run(Peer(cert, stage, "truncate"), cert)
    assert_clear(outcome, *TRUNCATED[stage])
    # Mid bitmap update: the capture had started, and ends with Disconnected first.
    started = [type(e).__name__ for e in outcome.events][:2]
    assert started == (["Connected", "Rect"] if stage == "active" else [])


# 3. Slow and silent peers.

STEP_NAMES = {
    "x224": r"X\.224 negotiation", "tls": "TLS handshake", "mcs": "MCS Connect",
    "attach": "MCS Attach User", "join": "MCS Channel Join", "license": "licensing",
    "demand": "capability exchange", "finalize": "capability exchange",
}


@pytest.mark.parametrize("stage", STAGES)
async def test_slowloris_one_byte_at_a_time(cert: CertFiles, stage: str) -> None:
    """A byte every 0.5 s: each step, and each PDU after the capture started, times out."""
    outcome = await run(Peer(cert, stage, "slow", interval=0.5), cert)
    pattern = STEP_NAMES.get(stage, "a PDU from the server stayed incomplete for 1.5 s")
    assert_clear(outcome, StepTimeoutError, pattern)


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "active"])
async def test_silent_peer_times_out_the_step(cert: CertFiles, stage: str) -> None:
    """Silence anywhere in the connection sequence, up to the server's Font Map PDU."""
    outcome = await run(Peer(cert, stage, "silent"), cert)
    assert_clear(outcome, StepTimeoutError, STEP_NAMES[stage] + r": no answer .* in 1\.5 s")


async def test_idle_desktop_after_the_sequence_is_not_an_error(cert: CertFiles) -> None:
    """After the Font Map an idle desktop sends nothing; stopping the capture is prompt."""
    peer = Peer(cert)  # honest: the whole sequence, one bitmap update, then silence
    async with fake_server(peer.handle) as port:
        with PeakMemory() as memory:
            stream = capture(config(port, cert))
            events = [await anext(stream), await anext(stream)]
            assert isinstance(events[0], Connected) and isinstance(events[1], Rect)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 3 * STEP)
            started = time.monotonic()
            await asyncio.wait_for(stream.aclose(), 5)
            assert time.monotonic() - started < 3
    assert memory.added < MEMORY_BOUND


# 4. Garbage instead of the server's PDU, at each step.


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("stage", STAGES)
async def test_garbage(cert: CertFiles, stage: str, seed: int) -> None:
    outcome = await run(Peer(cert, stage, "garbage", seed=seed, garbage_size=4096), cert)
    assert_clear(outcome, (ConnectError, ProtocolError, StepTimeoutError),  # type: ignore[arg-type]
                 r"\w")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(stage=st.sampled_from(STAGES), garbage=st.binary(min_size=1, max_size=3000))
def test_garbage_fuzzed(cert: CertFiles, stage: str, garbage: bytes) -> None:
    """Any bytes at any step: a typed error, never a hang or another exception."""
    peer = Peer(cert, stage, "raw", payload=garbage)
    outcome = asyncio.run(run(peer, cert))
    assert_clear(outcome, (ConnectError, ProtocolError, StepTimeoutError),  # type: ignore[arg-type]
                 r"\w")


# 2. Oversized: headers and fields that claim huge sizes.


def _filler(size: int = 16384) -> Iterator[bytes]:
    chunk = bytes(random.Random(7).randbytes(size))
    while True:
        yield chunk


def _huge_ber_connect_response() -> bytes:
    """xrdp's MCS Connect Response with its outer BER length claiming 4 GiB."""
    response = xrdp_connect()[0][0]
    assert response[:2] == b"\x7f\x66"  # [APPLICATION 102], then a one-octet length
    return x224_data(b"\x7f\x66\x84\xff\xff\xff\xf0" + response[3:])


OVERSIZED = {
    # A TPKT announcing the 64 KiB maximum, then an endless stream.
    "tpkt-64k-endless": ("mcs", b"\x03\x00\xff\xff", True, ProtocolError, "MCS Connect"),
    # Fast-path lengths: the 32 KiB maximum, and zero (which used to loop for ever).
    "fastpath-32k-endless": ("mcs", b"\x00\xff\xff", True, ProtocolError, "MCS Connect"),
    "fastpath-zero-length": ("mcs", b"\x00\x00\x00\x00", False, ProtocolError,
                             "announces 0 bytes"),
    "tpkt-zero-length": ("attach", b"\x03\x00\x00\x00", False, ProtocolError,
                         "announces 0 bytes"),
    "ber-4gib": ("mcs", _huge_ber_connect_response(), False, ProtocolError, "MCS Connect"),
}


@pytest.mark.parametrize("case", OVERSIZED)
async def test_oversized_headers(cert: CertFiles, case: str) -> None:
    stage, payload, endless, kind, pattern = OVERSIZED[case]
    peer = Peer(cert, stage, "raw", payload=payload, stream=_filler if endless else None,
                stream_seconds=3 * STEP)
    outcome = await run(peer, cert)
    assert_clear(outcome, kind, pattern)


# Bitmap updates and desktops whose sizes would need unbounded memory run in a
# child process under an address-space limit (see _hostile_child below).


def _bitmap_update(rects: list[tuple[int, ...]], count: int | None = None) -> bytes:
    """A slow-path Graphics Update (bitmap) PDU as I/O channel user data."""
    body = struct.pack("<HH", 1, len(rects) if count is None else count)
    for left, top, right, bottom, width, height, bpp, flags, data in rects:
        body += struct.pack("<9H", left, top, right, bottom, width, height, bpp, flags,
                            len(data)) + data
    header = struct.pack("<HHHIBBHBBH", 18 + len(body), 0x17, 1007, 0x000103EA, 0, 1,
                         len(body) + 4, 0x02, 0, 0)
    return send_data_indication(header + body)


def _rle16_fill(pixels: int) -> bytes:
    """Interleaved RLE (16 bpp) painting `pixels` black pixels: 3 bytes per 65535."""
    out = b""
    while pixels > 0:
        run = min(pixels, 65535)
        out += b"\xf0" + struct.pack("<H", run)
        pixels -= run
    return out


COMPRESSED = 0x0001 | 0x0400  # BITMAP_COMPRESSION | NO_BITMAP_COMPRESSION_HDR


def _desktop_fill_stream() -> Iterator[bytes]:
    """Endless 40-byte updates that each decode to the whole 1024x768 desktop (3 MiB)."""
    update = _bitmap_update([(0, 0, 1023, 767, 1024, 768, 16, COMPRESSED,
                              _rle16_fill(1024 * 768))])
    batch = update * 64
    while True:
        yield batch


def _huge_desktop_demand_active() -> bytes:
    """xrdp's Demand Active PDU with its Bitmap Capability Set saying 65535 x 65535."""
    demand = bytearray(xrdp_connect()[1][2])
    offset = 6 + 8 + struct.unpack_from("<H", demand, 6 + 4)[0] + 4  # first capability set
    while struct.unpack_from("<H", demand, offset)[0] != 0x02:
        offset += struct.unpack_from("<H", demand, offset + 2)[0]
    struct.pack_into("<HH", demand, offset + 4 + 8, 65535, 65535)
    return send_data_indication(bytes(demand))


HUGE = 65535
BITMAP_CASES = {
    # (stage, payload, stream, expected error pattern)
    "rect-65535x65535-rle16": ("active", _bitmap_update(
        [(0, 0, 63, 63, HUGE, HUGE, 16, COMPRESSED, _rle16_fill(HUGE * 4))]), None,
        r"bitmap 65535x65535 .* does not fit the 1024x768 desktop"),
    "rect-65535x65535-rle24": ("active", _bitmap_update(
        [(0, 0, 63, 63, HUGE, HUGE, 24, COMPRESSED, b"\xf0\xff\xff" * 8)]), None,
        r"does not fit the 1024x768 desktop"),
    "rect-off-desktop": ("active", _bitmap_update(
        [(65000, 65000, 65063, 65063, 64, 64, 16, COMPRESSED, _rle16_fill(4096))]), None,
        r"does not fit the 1024x768 desktop"),
    "rect-count-65535": ("active", _bitmap_update(
        [(0, 0, 63, 63, 64, 64, 16, COMPRESSED, _rle16_fill(4096))], count=HUGE), None,
        r"bitmap rectangle 1 of 65535 is truncated"),
    "desktop-65535x65535": ("demand", _huge_desktop_demand_active(), None,
                            r"65535x65535 desktop"),
    "desktop-fill-flood": ("active", b"", "fill", ""),
}


@pytest.mark.parametrize("case", BITMAP_CASES)
async def test_oversized_bitmaps_and_desktops_stay_bounded(cert: CertFiles, case: str) -> None:
    stage, payload, stream, pattern = BITMAP_CASES[case]
    peer = Peer(cert, stage, "raw", payload=payload,
                stream=_desktop_fill_stream if stream == "fill" else None, stream_seconds=60)
    async with fake_server(peer.handle) as port:
        result = await _child(port, cert, consume_delay=0.05 if stream else 0.0,
                              max_seconds=8 if stream else 30)
    added = result["peak_kib"] * 1024 - result["start_kib"] * 1024
    assert added < MEMORY_BOUND, result
    assert result["limit_hit"] is False, result
    if stream:
        # The consumer is slower than the peer: the capture had to hold the peer back.
        assert result["error"] is None and result["rects"] >= 5, result
        assert peer.sent_bytes > 0
        return
    assert result["error"] in ("BitmapDecodeError", "ProtocolError"), result
    assert re.search(pattern, result["message"]), result
    assert "\n" not in result["message"]
    assert result["elapsed"] < STEP + SLACK, result


async def _child(port: int, cert: CertFiles, consume_delay: float,
                 max_seconds: float) -> dict[str, object]:
    argv = [sys.executable, "-m", "tests.unit.test_rdp_hostile", str(port), cert.sha256,
            str(consume_delay), str(max_seconds)]
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        out, err = await asyncio.wait_for(child.communicate(), max_seconds + 60)
    except TimeoutError:
        child.kill()
        raise AssertionError("the capture child process hung") from None
    assert child.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def _hostile_child(port: int, fingerprint: str, consume_delay: float,
                   max_seconds: float) -> dict[str, object]:
    """Run in the child: capture under a 2 GiB address-space limit, report peak memory."""
    import resource

    _codecs()
    start = _status_kib("VmRSS")
    limit = _status_kib("VmSize") * 1024 + 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result: dict[str, object] = {"error": None, "message": "", "rects": 0, "limit_hit": False}

    async def consume() -> None:
        cfg = CaptureConfig(host="127.0.0.1", port=port, username="u", password=PASSWORD,
                            step_timeout=STEP, connect_timeout=STEP,
                            tls=TlsConfig(mode=TlsMode.FINGERPRINT,
                                          fingerprint_sha256=fingerprint))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_seconds):
                async with contextlib.aclosing(capture(cfg)) as stream:
                    async for event in stream:
                        if isinstance(event, Rect):
                            result["rects"] = int(result["rects"]) + 1  # type: ignore[call-overload]
                        await asyncio.sleep(consume_delay)

    started = time.monotonic()
    try:
        asyncio.run(consume())
    except CaptureError as exc:
        result.update(error=type(exc).__name__, message=str(exc))
    except MemoryError:
        result["limit_hit"] = True
    result.update(elapsed=time.monotonic() - started, start_kib=start,
                  peak_kib=_status_kib("VmHWM"))
    return result


# 5. Certificates that fail verification (see also test_rdp_capture.py: untrusted,
# misnamed, wrong fingerprint). The peer must see nothing after the TLS handshake.


@pytest.mark.parametrize("case", ["expired", "other-ip", "other-ca"])
async def test_certificate_failing_verify_mode(tmp_path: Path, case: str) -> None:
    served = self_signed(tmp_path / "served", expired=case == "expired",
                         ip="127.0.0.2" if case == "other-ip" else "127.0.0.1")
    trusted = self_signed(tmp_path / "other") if case == "other-ca" else served
    peer = Peer(served)
    tls = TlsConfig(mode=TlsMode.VERIFY, ca_file=trusted.cert)
    outcome = await run(peer, served, tls=tls)
    reason = {"expired": "certificate has expired", "other-ip": "IP address mismatch",
              "other-ca": "unable to get local issuer certificate|self.signed"}[case]
    assert_clear(outcome, TlsVerificationError, rf"failed Verify verification: .*({reason})")
    await asyncio.sleep(0.2)
    assert peer.reached == ["x224", "tls"]  # no MCS Connect Initial, so no credential


async def test_pinned_fingerprint_of_another_server(tmp_path: Path, cert: CertFiles) -> None:
    """A valid pin, but of another server's certificate: refused, and nothing sent."""
    other = self_signed(tmp_path / "other")
    peer = Peer(cert)
    tls = TlsConfig(mode=TlsMode.FINGERPRINT, fingerprint_sha256=other.sha256)
    outcome = await run(peer, cert, tls=tls)
    assert_clear(outcome, TlsVerificationError, rf"{cert.sha256} does not match the pinned "
                                                rf"{other.sha256}")
    await asyncio.sleep(0.2)
    assert peer.reached == ["x224", "tls"]


if __name__ == "__main__":
    port_arg, fingerprint_arg, delay_arg, seconds_arg = sys.argv[1:5]
    print(json.dumps(_hostile_child(int(port_arg), fingerprint_arg, float(delay_arg),
                                    float(seconds_arg))))
