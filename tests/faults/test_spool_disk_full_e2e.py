"""The spool's disk fills up under the real recorder, through the operator.

The operator gives the recorder pod an emptyDir `spool` with a sizeLimit
(LUCID_SPOOL_SIZE_LIMIT, here 32 MiB) and tells the recorder to push back at 80 %
of it (LUCID_RECORDER_SPOOL_MAX_BYTES). That bound comes first on a node with
room (tests/faults/test_spool_bound_e2e.py). Here the node's disk is fuller than
the pod's limit: the local kubelet's test knob (`set_node_disk_free`) makes the
spool a tmpfs of 256 KiB, far below the recorder's bound, so the filesystem
says no first (ENOSPC): the SpoolDiskFull path, not the SpoolFull back-pressure
one.

MinIO is stopped so nothing drains; one-second chunks, each opening with a
keyframe of the desktop and carrying a typing and window-dragging workload, fill
the small disk in about 15 s (an idle desktop would take about 40). The recorder must
say so (Degraded, naming the full spool disk), keep running in the same pod
without a restart, and lose nothing: once MinIO is back the spool drains,
Degraded clears, and after the stop `verify` finds every chunk, with no gap.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_common import contract
from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack
from lucid_operator.spool_budget import spool_bound
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _start_recording
from tests.faults.support import (
    assert_no_secret_in_logs,
    assert_one_pod_each,
    assert_truthful_recording,
    stop_and_verify,
)

pytestmark = pytest.mark.stack

NAME = "spool-full"
BUCKET = "faults-spool-full"
# The spool volume's sizeLimit: room for the default 8 MiB chunks, so the operator
# takes the session (a smaller limit is refused: Ready=False, SpoolTooSmall).
SPOOL_LIMIT = "32Mi"
# What the node's disk has free (the kubelet's test knob): a handful of one-second
# chunks, far below the recorder's bound of 80 % of SPOOL_LIMIT.
NODE_DISK_FREE = 256 * 1024
# How long the disk stays full before MinIO comes back: several retries of the
# held chunk, and long enough for a crash loop to show (the kubelet restarts in 1 s).
FULL_SECONDS = 4.0


@pytest.fixture
def disk_limited_operator(stack: Stack, crd: None, sessions: Sessions
                          ) -> Iterator[OperatorProcess]:
    """The real recorder (as recorder_operator) on a node with little free disk."""
    stack.kubelet.set_node_disk_free(NODE_DISK_FREE)
    try:
        running = OperatorProcess(stack, settings={
            "LUCID_RECORDER_METRICS_PORT": "0",
            "LUCID_TERMINATION_GRACE_SECONDS": "30",
            "LUCID_RETRY_BACKOFF_SECONDS": "1",
            "LUCID_SPOOL_SIZE_LIMIT": SPOOL_LIMIT,
            # Only this test's sessions: no other operator's settings can apply to them.
            "LUCID_NAMESPACES": sessions.namespace,
        }).start()
        yield running
        running.stop()
    finally:
        stack.kubelet.set_node_disk_free(None)  # later tests get a node with room


def _spool_dir(stack: Stack, pod: dict) -> Path:
    meta = pod["metadata"]
    return (stack.kubelet.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
            / "volumes" / "spool")


class Workload:
    """Types into the desktop and drags the clock around in the background, so every
    one-second chunk carries a few KiB more than the idle desktop's."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="desktop workload", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.stack.desktop.run_workload(1.0)
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.errors.append(exc)

    def __enter__(self) -> Workload:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the desktop workload did not stop"
        assert self.errors == [], self.errors


def _container(sessions: Sessions) -> dict:
    return sessions.pods(NAME)[0]["status"]["containerStatuses"][0]


def test_spool_disk_fills_while_minio_is_down_then_drains_without_loss(
        disk_limited_operator: OperatorProcess, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    began = time.monotonic()
    manifest, keys = _start_recording(sessions, NAME, BUCKET, 1, tmp_path / "keys")
    pod = sessions.pods(NAME)[0]
    assert pod["spec"]["volumes"][0] == {"name": "spool", "emptyDir": {"sizeLimit": SPOOL_LIMIT}}
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    bound = int(env[contract.ENV_SPOOL_MAX_BYTES])
    assert bound == spool_bound(32 << 20) > 100 * NODE_DISK_FREE
    wait_for(lambda: _chunks_stored(sessions, NAME) >= 2, 60, "the first chunks")
    pod_uid = pod["metadata"]["uid"]
    spool = _spool_dir(stack, pod)
    disk = os.statvfs(spool)
    assert disk.f_blocks * disk.f_frsize == NODE_DISK_FREE  # the knob, not the sizeLimit

    def degraded(status: str) -> dict | None:
        condition = sessions.condition(NAME, "Degraded")
        return condition if condition and condition["status"] == status else None

    seen: list[str] = []

    def disk_full() -> dict | None:
        condition = degraded("True")
        disk = os.statvfs(spool)
        used = (disk.f_blocks - disk.f_bfree) * disk.f_frsize
        seen.append(f"{used} of {disk.f_blocks * disk.f_frsize} bytes used, "
                    f"{len(list((spool / 'chunks').iterdir()))} chunks; "
                    f"Degraded: {condition and condition['message']}")
        return condition if condition and "spool disk full" in condition["message"] else None

    recording_after = time.monotonic() - began
    stack.minio.stop()
    stopped_at = time.monotonic()
    try:
        with Workload(stack):
            try:
                full = wait_for(disk_full, 60, "Degraded=True naming the full spool disk")
            finally:
                print("\n".join(seen[-5:]))
        full_after = time.monotonic() - stopped_at
        acknowledged = _chunks_stored(sessions, NAME)
        spooled = sorted(p.name for p in (spool / "chunks").iterdir())
        # The chunk sealed last and held back: it must be in the recording at the end.
        held = re.search(r"no room for chunk (\d+) \(No space left on device\)",
                         full["message"])
        assert held is not None, full
        assert int(held[1]) == acknowledged + len(spooled), (full, acknowledged, spooled)
        time.sleep(FULL_SECONDS)
        # Held, not crashed: the same process, nothing more spooled, nothing lost.
        assert _container(sessions).get("restartCount", 0) == 0, _container(sessions)
        assert sessions.status(NAME)["phase"] == "Recording"
        assert sorted(p.name for p in (spool / "chunks").iterdir()) == spooled
        assert list((spool / "tmp").iterdir()) == [], "a half-written chunk takes space"
    finally:
        stack.minio.start()  # whatever happens, later tests need MinIO back
    back_at = time.monotonic()

    wait_for(lambda: _chunks_stored(sessions, NAME) >= acknowledged + len(spooled), 60,
             "the spooled chunks to drain after MinIO is back")
    drained_after = time.monotonic() - back_at
    healed = wait_for(lambda: degraded("False"), 60, "Degraded=False once the spool drained")
    healed_after = time.monotonic() - back_at
    assert healed["lastTransitionTime"] >= full["lastTransitionTime"]

    # Same pod, never restarted: the spool's content never had to survive a restart.
    assert [p["metadata"]["uid"] for p in sessions.pods(NAME)] == [pod_uid]
    assert _container(sessions).get("restartCount", 0) == 0
    assert_truthful_recording(sessions, NAME)
    assert_one_pod_each(sessions, [NAME])

    stop_at = time.monotonic()
    status, result, _source = stop_and_verify(sessions, manifest, keys.private)
    completed_after = time.monotonic() - stop_at
    assert status["stopReason"] == "StoppedBySpec"
    assert status["pipeline"]["message"] == "", status["pipeline"]
    assert len(sessions.pods(NAME)) <= 1  # the Succeeded pod may linger; never two
    assert result["chunksExpected"] > int(held[1]), result  # the held chunk made it too
    assert result["gaps"] == [], result["gaps"]  # no restart, no drop: one epoch, no hole
    log = stack.kubelet.pod_log(sessions.namespace, pod["metadata"]["name"], "recorder",
                                pod_uid).read_text()
    assert "Traceback" not in log, log[-3000:]
    # The finished pod's tmpfs is unmounted and its volume removed by the kubelet.
    wait_for(lambda: not spool.exists(), 30, "the spool volume to be removed")
    assert not any(str(spool.parent) in line for line in
                   Path("/proc/self/mountinfo").read_text().splitlines())
    assert_no_secret_in_logs(stack)
    print(f"\nspool disk {NODE_DISK_FREE} bytes (sizeLimit {SPOOL_LIMIT}, bound {bound}): "
          f"{len(spooled)} chunks spooled before ENOSPC "
          f"({acknowledged} acknowledged before MinIO stopped); Recording after "
          f"{recording_after:.1f}s, disk full {full_after:.1f}s after MinIO stopped, "
          f"drained {drained_after:.1f}s and Degraded=False {healed_after:.1f}s after it came "
          f"back, Completed {completed_after:.1f}s after the stop, "
          f"{result['chunksExpected']} chunks verified; message: {full['message']!r}")
