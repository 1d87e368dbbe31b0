"""Latency and packet loss towards MinIO or the RDP target, while the real recorder records.

The recorder pod runs in the host's network (the local kubelet runs pods as
local processes), so the session's endpoint is pointed at a fault relay
(`lucid_devstack.netfault`): every byte to and from the real MinIO or xrdp
crosses the loopback of a network namespace the test creates, where the
kernel delays each packet (NFQUEUE) and drops a share of them (nftables). The
kernel here has no netem; the module's docstring says how this stands in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from lucid_devstack.netfault import Counts, NetFault
from lucid_devstack.stack import Stack
from lucid_recorder.sealing.keys import KeyPairFiles, keygen
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _cli
from tests.faults.support import (
    assert_no_secret_in_logs,
    assert_one_pod_each,
    assert_truthful_recording,
    secrets_of,
    stop_and_verify,
)

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Impairment:
    loss_percent: int
    delay_ms: int
    seconds: float


# CI: a bad but usable link (300 ms RTT, 10% loss each way). Slow: a link at
# the edge of usable, held for a minute (1 s RTT, 30% loss each way).
CI = Impairment(loss_percent=10, delay_ms=150, seconds=15)
HEAVY = Impairment(loss_percent=30, delay_ms=500, seconds=60)
CASES = [pytest.param(CI, id="150ms-10pct"),
         pytest.param(HEAVY, id="500ms-30pct", marks=pytest.mark.slow)]


@dataclass
class Observed:
    """What the status showed while the link was impaired, sampled once a second."""

    phases: set[str] = field(default_factory=set)
    max_upload_lag: float = 0.0
    degraded_messages: set[str] = field(default_factory=set)
    chunks_before: int = 0
    chunks_after: int = 0
    counts: Counts | None = None

    def line(self) -> str:
        return (f"phases {sorted(self.phases)}, chunks {self.chunks_before}->"
                f"{self.chunks_after}, max uploadLag {self.max_upload_lag:.1f}s, "
                f"degraded {sorted(self.degraded_messages)}, kernel {self.counts}")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Callable[[tuple[str, int]], NetFault]]:
    """Starts fault relays; stops each (relay process and namespace) whatever the outcome."""
    started: list[NetFault] = []

    def start(target: tuple[str, int]) -> NetFault:
        fault = NetFault(target, tmp_path / "netfault").start()
        started.append(fault)
        return fault

    yield start
    for fault in started:
        fault.stop()


def _start_recording(sessions: Sessions, name: str, keys_dir: Path,
                     **spec: Any) -> tuple[dict[str, Any], KeyPairFiles]:
    """A session with one-second chunks and a real auditor key, its spec parts replaced."""
    keys = keygen(keys_dir)
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, chunking={"maxSeconds": 1})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    for part, values in spec.items():
        manifest["spec"][part].update(values)
    sessions.apply(manifest)
    # Connecting through the relay costs a round trip per handshake step.
    sessions.wait_phase(name, "Recording", timeout=90)
    return manifest, keys


def _hold(sessions: Sessions, name: str, fault: NetFault, impairment: Impairment,
          on_tick: Callable[[], None] = lambda: None) -> Observed:
    """Impair the link for its duration, sampling the session's status every second."""
    seen = Observed(chunks_before=_chunks_stored(sessions, name))
    fault.impair(loss_percent=impairment.loss_percent, delay_ms=impairment.delay_ms)
    deadline = time.monotonic() + impairment.seconds
    while time.monotonic() < deadline:
        on_tick()
        status = sessions.status(name)
        seen.phases.add(status.get("phase", ""))
        lag = (status.get("pipeline") or {}).get("uploadLagSeconds") or 0.0
        seen.max_upload_lag = max(seen.max_upload_lag, float(lag))
        degraded = sessions.condition(name, "Degraded")
        if degraded and degraded["status"] == "True":
            seen.degraded_messages.add(degraded["message"])
        time.sleep(1)
    seen.chunks_after = _chunks_stored(sessions, name)
    seen.counts = fault.counts()  # before clear(): lifting the impairment resets the counters
    fault.clear()
    return seen


def _not_degraded(sessions: Sessions, name: str) -> bool:
    degraded = sessions.condition(name, "Degraded")
    return degraded is None or degraded["status"] == "False"


def _assert_relay_log_clean(stack: Stack, fault: NetFault) -> None:
    """The relay's own log is collected too: it carries no payload, so no credential."""
    text = fault.log.read_text(errors="replace")
    assert [what for what, value in secrets_of(stack).items() if value in text] == []


@pytest.mark.parametrize("impairment", CASES)
def test_minio_behind_delay_and_loss_keeps_every_acknowledged_chunk(
        recorder_operator, sessions: Sessions, tmp_path: Path, relay, impairment: Impairment):
    stack = sessions.stack
    name, bucket = "minio-netem", "faults-minio-net"
    fault = relay(("127.0.0.1", stack.minio.port))
    manifest, keys = _start_recording(sessions, name, tmp_path / "keys",
                                      storage={"endpoint": fault.endpoint, "bucket": bucket})
    wait_for(lambda: _chunks_stored(sessions, name) >= 2, 60, "the first chunks")
    pod_uid = sessions.pods(name)[0]["metadata"]["uid"]

    seen = _hold(sessions, name, fault, impairment)
    print(f"\nMinIO behind {impairment}: {seen.line()}")
    assert seen.counts is not None
    # The uploads really crossed the impaired link, and the kernel really dropped some.
    assert seen.counts.delayed > 0 and seen.counts.dropped > 0, seen.counts
    # Capture never depends on storage: the session stayed Recording throughout.
    assert seen.phases == {"Recording"}, seen.line()
    if impairment is CI:
        # A slow, lossy link still carries one-second chunks: uploads kept going.
        assert seen.chunks_after > seen.chunks_before, seen.line()

    during = _chunks_stored(sessions, name)
    wait_for(lambda: _chunks_stored(sessions, name) >= during + 3, 90,
             "chunks to keep being stored once the link is healthy")
    wait_for(lambda: _not_degraded(sessions, name), 60, "Degraded to clear")
    assert_truthful_recording(sessions, name)
    assert [p["metadata"]["uid"] for p in sessions.pods(name)] == [pod_uid]
    assert_one_pod_each(sessions, [name])

    status, result, _ = stop_and_verify(sessions, manifest, keys.private)
    assert status.get("stopReason"), status
    # The spool held everything while uploads crawled: nothing dropped, no restart.
    assert result["gaps"] == [], result["gaps"]
    assert result["chunksExpected"] >= seen.chunks_after, result
    assert_no_secret_in_logs(stack)
    _assert_relay_log_clean(stack, fault)


@pytest.mark.parametrize("impairment", CASES)
def test_rdp_target_behind_delay_and_loss_keeps_recording(
        recorder_operator, sessions: Sessions, tmp_path: Path, relay, impairment: Impairment):
    stack = sessions.stack
    name, bucket = "rdp-netem", "faults-rdp-net"
    fault = relay(("127.0.0.1", stack.desktop.rdp_port))
    # The relay carries TCP only: TLS stays end to end, so the pinned fingerprint
    # of xrdp's certificate still matches (sessions.manifest sets mode Fingerprint).
    manifest, keys = _start_recording(sessions, name, tmp_path / "keys",
                                      target={"host": "127.0.0.1", "port": fault.port},
                                      storage={"bucket": bucket})
    wait_for(lambda: _chunks_stored(sessions, name) >= 2, 60, "the first chunks")
    pod_uid = sessions.pods(name)[0]["metadata"]["uid"]
    # The operator's reachability check and the recorder's connection so far.
    connected_before = fault.connections()

    typed = iter(range(1000))
    seen = _hold(sessions, name, fault, impairment,
                 # Screen updates to carry: a line typed every second.
                 on_tick=lambda: stack.desktop.type_text(f"under fault {next(typed)} "))
    print(f"\nRDP behind {impairment}: {seen.line()}, "
          f"reconnects {fault.connections() - connected_before}")
    assert seen.counts is not None
    assert seen.counts.delayed > 0 and seen.counts.dropped > 0, seen.counts
    # The recorder may report the slow link, or reconnect and say so, but it
    # is never anything but Recording (no Failed, no Pending from a crash).
    assert seen.phases == {"Recording"}, seen.line()

    after = _chunks_stored(sessions, name)
    wait_for(lambda: _chunks_stored(sessions, name) >= after + 3, 90,
             "chunks to keep growing once the link is healthy")

    def healthy_again() -> dict[str, Any] | None:
        status = sessions.status(name)
        ok = (status.get("phase") == "Recording"
              and (status.get("pipeline") or {}).get("state") == "Capturing"
              and _not_degraded(sessions, name))
        return status if ok else None

    wait_for(healthy_again, 60, "phase Recording, pipeline Capturing, not Degraded")
    assert_truthful_recording(sessions, name)
    pods = sessions.pods(name)
    assert [p["metadata"]["uid"] for p in pods] == [pod_uid]
    # Whatever happened to the connection, it was handled inside the process.
    assert pods[0]["status"]["containerStatuses"][0].get("restartCount", 0) == 0
    assert_one_pod_each(sessions, [name])
    reconnects = fault.connections() - connected_before
    # What the desktop shows now is what the recording must end on: screen
    # state carried through the fault (caches, partial updates) was not garbled.
    stack.desktop.type_text("typed after the fault")
    stack.desktop.press("Return")
    shown = _chunks_stored(sessions, name)
    wait_for(lambda: _chunks_stored(sessions, name) >= shown + 2, 60, "chunks after typing")
    clock = stack.desktop.window_geometry("xclock")
    screen = stack.desktop.screenshot_rgb()

    status, result, source = stop_and_verify(sessions, manifest, keys.private)
    assert status.get("stopReason"), status
    # A lost connection is a gap inside the stream, never a sealing gap.
    assert result["gaps"] == [], result["gaps"]
    segments = tmp_path / "seg"
    decrypted = _cli(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(segments))
    assert decrypted.returncode == 0, decrypted.stderr
    info = _cli(stack, "lucid-play", "info", str(segments))
    assert info.returncode == 0, info.stderr
    gaps = re.search(r"^gaps\s+(\d+)$", info.stdout, re.MULTILINE)
    assert gaps, info.stdout
    print(f"recording: {int(gaps[1])} gap(s), {reconnects} reconnect(s) through the relay")
    last = tmp_path / "last.png"
    frame = _cli(stack, "lucid-play", "frame", str(segments), "--at", "end", "-o", str(last))
    assert frame.returncode == 0, frame.stderr
    played = Image.open(last).convert("RGB")
    assert played.size == screen.size
    x, y, w, h = clock  # its hands move between the screenshot and the stop
    for image in (played, screen):
        image.paste((0, 0, 0), (x, y, x + w, y + h))
    assert ImageChops.difference(played, screen).getbbox() is None
    # A reconnect (a further connection through the relay) leaves a marked gap; no
    # reconnect means the capture rode out the fault on its first connection.
    if reconnects == 0:
        assert int(gaps[1]) == 0, info.stdout
    else:
        assert int(gaps[1]) >= 1, (info.stdout, reconnects)
    assert_no_secret_in_logs(stack)
    _assert_relay_log_clean(stack, fault)
