"""The recorder's pipeline without a network: the screen rule, the grace period, rotated keys.

The store points at a port nothing listens on, so every upload fails as a storage
outage does; the capture is a list of events shaped like xrdp's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from prometheus_client import REGISTRY, generate_latest

from lucid_common import contract
from lucid_common.api import RecordingSessionSpec
from lucid_recorder.pipeline import metrics
from lucid_recorder.pipeline import recording as recording_module
from lucid_recorder.pipeline.recording import Recording, shutdown_deadline
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing import SessionIdentity
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import (
    ChunksNotUploaded,
    ObjectStore,
    RetryPolicy,
    SessionLayout,
    Spool,
    StorageAuthError,
    TransientStorageError,
    make_client,
    resume,
)
from lucid_recorder.storage.credentials import MountedCredentials

SESSION = SessionIdentity(namespace="team", name="rec", uid="4a7e6c1e-2222-4a5c-8e9f-0011223344")
W, H = 256, 200


class Reports(StatusReporter):
    def __init__(self) -> None:
        super().__init__(lambda body: None, interval=0.1)
        self.views: list[dict[str, Any]] = []

    def update(self, pipeline: dict[str, Any], significant: bool = False) -> None:
        self.views.append(dict(pipeline))
        super().update(pipeline, significant)


def _recording(tmp_path: Path, screen_timeout: int = 60, grace: float | None = None,
               credentials: MountedCredentials | None = None,
               auth_wait: float = 300.0) -> tuple[Recording, Reports]:
    spec = RecordingSessionSpec.model_validate({
        "target": {"host": "127.0.0.1", "port": 3390,
                   "credentialsSecretRef": {"name": "rdp-login"}},
        "recording": {"screenTimeoutSeconds": screen_timeout},
        "storage": {"endpoint": "127.0.0.1:9", "bucket": "unit-bucket",
                    "credentialsSecretRef": {"name": "minio-creds"}, "tls": {"enabled": False}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
    })
    store = ObjectStore(make_client("127.0.0.1:9", "unused", "unused", secure=False),
                        "unit-bucket", SessionLayout("recordings", SESSION))
    recipient = X25519PrivateKey.generate().public_key()
    spool = Spool(tmp_path / "spool", 1 << 24, SESSION)
    reports = Reports()
    recording = Recording(spec, spool, store, resume(spool, None, recipient), recipient,
                          reports, retry=RetryPolicy(initial_delay=0.05, max_delay=0.2),
                          grace_seconds=grace, credentials=credentials,
                          auth_wait_seconds=auth_wait)
    return recording, reports


def _rect(x: int, y: int, w: int, h: int) -> ev.Rect:
    return ev.Rect(time.monotonic_ns(), x, y, w, h, bytes(w * h * 3))


async def _xrdp(session_frame: bool) -> AsyncIterator[ev.Event]:
    """xrdp's own screen in strips; then the session's frame, or only its log window."""
    yield ev.Connected(time.monotonic_ns(), W, H, 32, "00" * 32, ev.TlsMode.INSECURE)
    for y in range(H - 4, -1, -4):
        yield _rect(0, y, W, 4)
    if session_frame:
        for y in range(H - 4, -1, -4):
            yield _rect(0, y, W, 4)
    else:
        for row in range(10):
            yield _rect(10, 40 + row * 10, 100, 10)
    await asyncio.Event().wait()  # then nothing, until the recording stops


def _metric(name: str, labels: str = "") -> float:
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith(f"{name}{labels} ") or line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{labels} not exported")


async def _run_until(recording: Recording, source: AsyncIterator[ev.Event],
                     seconds: float) -> tuple[BaseException | None, float]:
    stop = asyncio.Event()
    task = asyncio.create_task(recording.run(source, stop))
    await asyncio.sleep(seconds)
    stop.set()
    stopped = time.monotonic()
    try:
        await task
    except Exception as exc:  # noqa: BLE001 - returned for the test to judge
        return exc, time.monotonic() - stopped
    return None, time.monotonic() - stopped


def test_a_refused_login_reports_no_screen_updates(tmp_path: Path):
    recording, reports = _recording(tmp_path, screen_timeout=1, grace=1.0)

    async def scenario() -> tuple[BaseException | None, float]:
        return await _run_until(recording, _xrdp(session_frame=False), 2.0)

    # Read while it runs: the gauges are the recorder's, not the test's.
    seen: dict[str, float] = {}
    original = recording._check_screen

    def spy(report: bool = True) -> None:
        original(report)
        seen["connected"] = _metric("lucid_recorder_rdp_connected")
        seen["shown"] = _metric("lucid_recorder_screen_shown")

    recording._check_screen = spy  # type: ignore[method-assign]
    asyncio.run(scenario())
    missing = [v for v in reports.views if v.get("screen") == contract.SCREEN_MISSING]
    assert missing, [v.get("screen") for v in reports.views]
    message = missing[0]["message"]
    assert message.startswith("only the server's own screen (60 updates, no full frame"), message
    assert "within 1s of connecting to 127.0.0.1:3390" in message
    assert "check Secret rdp-login" in message
    assert seen == {"connected": 1.0, "shown": 0.0}
    assert _metric("lucid_recorder_rdp_connected") == 0.0  # the capture ended


def test_the_sessions_frame_shows_the_screen(tmp_path: Path):
    recording, reports = _recording(tmp_path, screen_timeout=1, grace=1.0)
    asyncio.run(_run_until(recording, _xrdp(session_frame=True), 1.5))
    screens = {v.get("screen") for v in reports.views}
    assert contract.SCREEN_SHOWN in screens and contract.SCREEN_MISSING not in screens
    assert all("own screen" not in v["message"] for v in reports.views)


def test_a_stop_during_an_outage_names_the_chunks_not_uploaded_within_the_grace(
        tmp_path: Path):
    grace = 2.0
    recording, reports = _recording(tmp_path, grace=grace)
    before = _metric("lucid_recorder_errors_total", 'stage="store"')
    error, took = asyncio.run(_run_until(recording, _xrdp(session_frame=True), 0.5))
    assert isinstance(error, ChunksNotUploaded), error
    assert error.seqs == [0] and error.ranges == "0"
    text = str(error)
    assert text.startswith("1 sealed chunk not uploaded (seq 0, "), text
    assert "and no final manifest; they are lost with this pod: storage did not answer " \
           "within the 2s grace period" in text, text
    # It gave up before the kubelet's SIGKILL would have come, with time for last words.
    assert took < grace
    assert took >= shutdown_deadline(0.0, grace) - 0.3
    assert _metric("lucid_recorder_errors_total", 'stage="store"') > before
    assert reports.views[-1]["uploadLagSeconds"] > 0


def test_shutdown_deadline_keeps_a_bounded_margin():
    assert shutdown_deadline(100.0, 60) == 150.0  # 10 s kept
    assert shutdown_deadline(100.0, 30) == 124.0  # 20 %
    assert shutdown_deadline(0.0, 3600) == 3590.0


def _secret_volume(root: Path, version: str, access: str, secret: str) -> None:
    """The kubelet's layout: files in a version directory, ..data pointing at it."""
    data = root / f"..{version}"
    data.mkdir(parents=True)
    (data / contract.STORAGE_ACCESS_KEY_FILE).write_text(access)
    (data / contract.STORAGE_SECRET_KEY_FILE).write_text(secret)
    link = root / "..data_tmp"
    link.symlink_to(data.name)
    link.replace(root / "..data")
    for name in (contract.STORAGE_ACCESS_KEY_FILE, contract.STORAGE_SECRET_KEY_FILE):
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")


def test_mounted_credentials_follow_the_kubelets_swap(tmp_path: Path):
    _secret_volume(tmp_path, "v1", "old-key", "old-secret")
    provider = MountedCredentials(tmp_path, "Secret minio-creds")
    assert provider.retrieve().access_key == "old-key"
    _secret_volume(tmp_path, "v2", "new-key", "new-secret")
    fresh = provider.retrieve()  # no reload asked: the ..data swap is seen
    assert (fresh.access_key, fresh.secret_key, fresh.session_token) == (
        "new-key", "new-secret", None)
    assert provider.reload() is False and provider.reloads == 1


def test_mounted_credentials_without_a_kubelet_and_with_a_session_token(tmp_path: Path):
    (tmp_path / contract.STORAGE_ACCESS_KEY_FILE).write_text("a")
    (tmp_path / contract.STORAGE_SECRET_KEY_FILE).write_text("b")
    provider = MountedCredentials(tmp_path, "Secret sts")
    assert provider.retrieve().session_token is None
    (tmp_path / contract.STORAGE_SESSION_TOKEN_FILE).write_text("token-1")
    assert provider.reload() is True
    assert provider.retrieve().session_token == "token-1"
    os.remove(tmp_path / contract.STORAGE_SECRET_KEY_FILE)
    with pytest.raises(StorageAuthError, match="Secret sts has no secretKey"):
        provider.reload()


def test_rejected_credentials_are_retried_while_a_rotated_secret_may_come(tmp_path: Path):
    volume = tmp_path / "creds"
    _secret_volume(volume, "v1", "old-key", "old-secret")
    provider = MountedCredentials(volume, "Secret minio-creds")
    provider.retrieve()
    recording, _ = _recording(tmp_path, credentials=provider, auth_wait=0.3)
    rejected = StorageAuthError("object store rejected the credentials (InvalidAccessKeyId)")
    assert recording._retryable(TransientStorageError("down")) is True
    assert recording._retryable(rejected) is True  # same keys, but within the wait
    problem = recording._storage_problem(rejected, 2, 1.0)
    assert problem.startswith("object store rejected the credentials (InvalidAccessKeyId); "
                              "re-reading Secret minio-creds for rotated keys, retry 2 in 1.0s"
                              ), problem
    time.sleep(0.35)
    assert recording._retryable(rejected) is False  # waited long enough: fail
    before = _metric("lucid_recorder_retries_total", 'operation="storage_credentials"')
    _secret_volume(volume, "v2", "new-key", "new-secret")
    assert recording._retryable(rejected) is True  # rotated: retry with the new keys at once
    assert _metric("lucid_recorder_retries_total",
                   'operation="storage_credentials"') == before + 1
    plain, _ = _recording(tmp_path / "plain")  # no mounted credentials: as before
    assert plain._retryable(rejected) is False


def test_error_and_retry_counters_exist_before_anything_fails():
    text = generate_latest(REGISTRY).decode()
    for stage in metrics.ERROR_STAGES:
        assert f'lucid_recorder_errors_total{{stage="{stage}"}}' in text
    for operation in metrics.RETRY_OPERATIONS:
        assert f'lucid_recorder_retries_total{{operation="{operation}"}}' in text
    for gauge in ("lucid_recorder_upload_lag_seconds", "lucid_recorder_rdp_connected",
                  "lucid_recorder_screen_shown"):
        assert f"\n{gauge} " in text, gauge


def test_giving_up_on_rejected_credentials_says_how_long_it_waited(tmp_path: Path):
    volume = tmp_path / "creds"
    _secret_volume(volume, "v1", "old-key", "old-secret")
    provider = MountedCredentials(volume, "Secret minio-creds")
    provider.retrieve()
    recording, _ = _recording(tmp_path, credentials=provider, auth_wait=0.0)
    rejected = StorageAuthError("object store rejected the credentials (InvalidAccessKeyId)")
    assert str(recording._auth_gave_up(rejected)) == str(rejected)  # it never waited
    assert recording._retryable(rejected) is False
    final = str(recording._auth_gave_up(rejected))
    assert final.startswith(f"{rejected}; Secret minio-creds held no key the store accepts "
                            "in 0s of re-reading it (storageAuthWaitSeconds 0)"), final


# -- the per-update path: the stop of the source, deferred routine reports ---------------


class _Source:
    """An event source that hands out `events`, then waits, and notes how it ended."""

    def __init__(self, events: list[ev.Event]) -> None:
        self.events = events
        self.closed = False
        self.cancelled = False

    async def stream(self) -> AsyncIterator[ev.Event]:
        try:
            for event in self.events:
                yield event
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


def test_until_stops_a_waiting_source_and_closes_it():
    events: list[ev.Event] = [_rect(0, 0, 1, 1) for _ in range(5)]
    source = _Source(events)

    async def scenario() -> tuple[list[ev.Event], int]:
        stop = asyncio.Event()
        seen: list[ev.Event] = []

        async def consume() -> None:
            async for event in recording_module._until(source.stream(), stop):
                seen.append(event)
                if len(seen) == len(events):
                    asyncio.get_running_loop().call_later(0.05, stop.set)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(task, 5)
        return seen, task.cancelling()

    seen, cancelling = asyncio.run(scenario())
    assert seen == events
    assert source.cancelled and source.closed
    assert cancelling == 0  # the stop's own cancellation was taken back


def test_until_lets_a_cancellation_from_outside_through():
    source = _Source([])

    async def scenario() -> bool:
        stop = asyncio.Event()

        async def consume() -> None:
            async for _event in recording_module._until(source.stream(), stop):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        stop.set()  # in the same tick: the outside cancellation still wins
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario()) is True
    assert source.closed


def test_until_returns_at_once_when_stopped_between_events():
    async def scenario() -> list[ev.Event]:
        stop = asyncio.Event()
        seen: list[ev.Event] = []
        async for event in recording_module._until(_Source([_rect(0, 0, 1, 1)] * 3).stream(),
                                                   stop):
            seen.append(event)
            stop.set()  # while the consumer works, not while it waits
        return seen

    assert len(asyncio.run(scenario())) == 1


def test_a_burst_of_updates_is_reported_in_a_few_views_and_counted_exactly(tmp_path: Path):
    recording, reports = _recording(tmp_path, screen_timeout=0, grace=1.0)
    burst = 2000
    updates_before = _metric("lucid_recorder_updates_total")
    rects_before = _metric("lucid_recorder_rectangles_total")

    async def source() -> AsyncIterator[ev.Event]:
        yield ev.Connected(time.monotonic_ns(), W, H, 32, "00" * 32, ev.TlsMode.INSECURE)
        for i in range(burst):
            yield _rect(i % W, 0, 1, 1)
        yield ev.Pointer(time.monotonic_ns(), 3, 4)
        await asyncio.Event().wait()

    async def scenario() -> dict[str, Any]:
        stop = asyncio.Event()
        task = asyncio.create_task(recording.run(source(), stop))
        # The screen watcher's tick reports what the burst left unreported.
        await asyncio.sleep(recording_module.SCREEN_POLL_SECONDS * 2.5)
        view = reports.views[-1]
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        return view

    view = asyncio.run(scenario())
    assert view["updatesCaptured"] == burst + 1
    routine = [v for v in reports.views if 0 < v["updatesCaptured"] < burst + 1]
    assert len(routine) < burst // 100, len(routine)
    assert reports.views[-1]["updatesCaptured"] == burst + 1
    assert _metric("lucid_recorder_updates_total") - updates_before == burst + 1
    assert _metric("lucid_recorder_rectangles_total") - rects_before == burst
