"""The recorder's own spool bound, end to end: back-pressure before the volume is full.

The operator derives the recorder's bound (LUCID_RECORDER_SPOOL_MAX_BYTES) from the
spool volume's sizeLimit (LUCID_SPOOL_SIZE_LIMIT): 80 % of it, so the recorder stops
sealing and says "spool full ... waiting for uploads" before a kubelet would evict the
pod for outgrowing the limit. On the local kubelet the volume is a tmpfs of exactly the
limit, so the test also sees that the bound really came first: no ENOSPC, disk never
full.

The limit is small (1Mi: bound 819 KiB) so that the bound fills in well under a
minute with MinIO stopped; the spec's chunks are small enough for the operator's
worst-case estimate to fit it (chunking.maxBytes 256Ki, a 200x200 desktop). The test
desktop stays 1024x768 whatever the spec asks (the server resizes the client); with a
typing and window-dragging workload its chunks close at 256 KiB of raw updates, several
a second, about 12 KiB each once compressed. The recorder counts them in whole disk
blocks, as the disk does (when it counted bytes, 7 KiB chunks reached ENOSPC first).
MinIO then comes back: the spool drains, Degraded clears, and `verify` finds every
chunk, with no gap.

A session whose chunks could not fit the bound is refused up front (Ready=False,
SpoolTooSmall), rather than failing its recorder on its first large chunk.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_common import contract
from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack
from lucid_operator.spool_budget import spool_bound
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored
from tests.faults.support import (
    assert_no_secret_in_logs,
    assert_one_pod_each,
    assert_truthful_recording,
    stop_and_verify,
)
from tests.faults.test_spool_disk_full_e2e import Workload, _spool_dir

pytestmark = pytest.mark.stack

NAME = "spool-bound"
BUCKET = "faults-spool-bound"
SPOOL_LIMIT = "1Mi"
LIMIT_BYTES = 1 << 20
BOUND = LIMIT_BYTES - LIMIT_BYTES // 5  # 80 % of the limit
# Small chunks whose worst case (incompressible) still fits the bound.
SMALL_CHUNKS = {"chunking": {"maxSeconds": 1, "maxBytes": 256 * 1024},
                "recording": {"desktop": {"width": 200, "height": 200}}}
# How long the spool stays full before MinIO comes back: long enough for a crash loop
# (the kubelet restarts in 1 s) or a slow creep past the bound to show.
FULL_SECONDS = 4.0
SPOOL_FULL = re.compile(r"spool full: (\d+) more bytes would exceed the limit of (\d+) "
                        r"\((\d+) in use, waiting for uploads\)")


@pytest.fixture
def bounded_operator(stack: Stack, crd: None, sessions: Sessions
                     ) -> Iterator[OperatorProcess]:
    """The real recorder with a small spool volume, for this namespace."""
    stack.kubelet.set_node_disk_free(None)  # a node with room: the sizeLimit is the tmpfs
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "30",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
        "LUCID_RETRY_BACKOFF_MAX_SECONDS": "4",
        "LUCID_SPOOL_SIZE_LIMIT": SPOOL_LIMIT,
        # Only this test's sessions: no other operator's settings can apply to them.
        "LUCID_NAMESPACES": sessions.namespace,
    }).start()
    yield running
    running.stop()


def _spooled_bytes(spool: Path) -> int:
    """What the recorder's bound counts: chunk files and the journal, in whole blocks."""
    block = os.statvfs(spool).f_frsize
    files = [*(spool / "chunks").iterdir(), spool / "journal.jsonl"]
    return sum(-(-p.stat().st_size // block) * block for p in files)


def _disk_used(spool: Path) -> int:
    disk = os.statvfs(spool)
    return (disk.f_blocks - disk.f_bfree) * disk.f_frsize


def _container(sessions: Sessions) -> dict:
    return sessions.pods(NAME)[0]["status"]["containerStatuses"][0]


def test_spool_stops_at_its_bound_below_the_volume_then_drains_without_loss(
        bounded_operator: OperatorProcess, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    began = time.monotonic()
    keys = keygen(tmp_path / "keys")
    sessions.secret(f"auditor-{NAME}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(NAME, **SMALL_CHUNKS)
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{NAME}"
    manifest["spec"]["storage"]["bucket"] = BUCKET
    sessions.apply(manifest)
    sessions.wait_phase(NAME, "Recording", timeout=90)
    recording_after = time.monotonic() - began

    pod = sessions.pods(NAME)[0]
    assert pod["spec"]["volumes"][0] == {"name": "spool", "emptyDir": {"sizeLimit": SPOOL_LIMIT}}
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env[contract.ENV_SPOOL_MAX_BYTES] == str(BOUND) == str(spool_bound(LIMIT_BYTES))
    pod_uid = pod["metadata"]["uid"]
    spool = _spool_dir(stack, pod)
    disk = os.statvfs(spool)
    assert disk.f_blocks * disk.f_frsize == LIMIT_BYTES  # the volume is exactly the limit
    wait_for(lambda: _chunks_stored(sessions, NAME) >= 2, 60, "the first chunks")

    seen: list[str] = []
    most_used = 0

    def spool_full() -> re.Match[str] | None:
        nonlocal most_used
        condition = sessions.condition(NAME, "Degraded")
        message = condition["message"] if condition and condition["status"] == "True" else ""
        used = _disk_used(spool)
        most_used = max(most_used, used)
        seen.append(f"disk {used} of {LIMIT_BYTES} bytes, spool {_spooled_bytes(spool)} of "
                    f"{BOUND}, {len(list((spool / 'chunks').iterdir()))} chunks; "
                    f"Degraded: {message}")
        assert "spool disk full" not in message, seen[-5:]  # the bound must come first
        return SPOOL_FULL.search(message)

    stack.minio.stop()
    stopped_at = time.monotonic()
    try:
        with Workload(stack):
            try:
                full = wait_for(spool_full, 90, "Degraded=True: spool full at the bound")
            finally:
                print("\n".join(seen[-5:]))
        full_after = time.monotonic() - stopped_at
        needed, limit, in_use = (int(g) for g in full.groups())
        # The recorder counts exactly what is on its spool, stops short of its bound, and
        # the next chunk is what would have crossed it.
        assert limit == BOUND, full[0]
        assert in_use == _spooled_bytes(spool) <= BOUND < in_use + needed, full[0]
        acknowledged = _chunks_stored(sessions, NAME)
        spooled = sorted(p.name for p in (spool / "chunks").iterdir())
        time.sleep(FULL_SECONDS)
        # Held, not crashed: the same process, nothing more spooled, the disk not full.
        assert _container(sessions).get("restartCount", 0) == 0, _container(sessions)
        assert sessions.status(NAME)["phase"] == "Recording"
        assert sorted(p.name for p in (spool / "chunks").iterdir()) == spooled
        assert list((spool / "tmp").iterdir()) == [], "a half-written chunk takes space"
        degraded = sessions.condition(NAME, "Degraded")
        assert degraded and degraded["status"] == "True", degraded
        assert "spool full" in degraded["message"], degraded
        assert "spool disk full" not in degraded["message"], degraded
        assert _disk_used(spool) < LIMIT_BYTES
    finally:
        stack.minio.start()  # whatever happens, later tests need MinIO back
    back_at = time.monotonic()

    wait_for(lambda: _chunks_stored(sessions, NAME) >= acknowledged + len(spooled), 60,
             "the spooled chunks to drain after MinIO is back")
    drained_after = time.monotonic() - back_at

    def healed() -> dict | None:
        condition = sessions.condition(NAME, "Degraded")
        return condition if condition and condition["status"] == "False" else None

    cleared = wait_for(healed, 60, "Degraded=False once the spool drained")
    healed_after = time.monotonic() - back_at

    # Same pod, never restarted; the invariants of every fault test.
    assert [p["metadata"]["uid"] for p in sessions.pods(NAME)] == [pod_uid]
    assert _container(sessions).get("restartCount", 0) == 0
    assert cleared["reason"] != "", cleared
    assert_truthful_recording(sessions, NAME)
    assert_one_pod_each(sessions, [NAME])

    status, result, _source = stop_and_verify(sessions, manifest, keys.private)
    assert status["stopReason"] == "StoppedBySpec"
    assert status["pipeline"]["message"] == "", status["pipeline"]
    # Back-pressure waits, it does not drop (policy Block) and it did not restart.
    assert result["gaps"] == [], result["gaps"]
    log = stack.kubelet.pod_log(sessions.namespace, pod["metadata"]["name"], "recorder",
                                pod_uid).read_text()
    assert "Traceback" not in log, log[-3000:]
    assert_no_secret_in_logs(stack)
    print(f"\nspool limit {SPOOL_LIMIT}, bound {BOUND}: {len(spooled)} chunks "
          f"({in_use} bytes) spooled before SpoolFull, the next needing {needed}; disk at most "
          f"{most_used} of {LIMIT_BYTES} bytes ({LIMIT_BYTES - most_used} to spare); "
          f"Recording after {recording_after:.1f}s, spool full {full_after:.1f}s after MinIO "
          f"stopped, drained {drained_after:.1f}s and Degraded=False {healed_after:.1f}s after "
          f"it came back; {result['chunksExpected']} chunks verified; "
          f"message: {full.string!r}")


def test_a_session_whose_chunks_cannot_fit_the_bound_is_refused(
        bounded_operator: OperatorProcess, sessions: Sessions):
    # The defaults: 8 MiB chunks of a 1024x768 desktop, far more than an 819 KiB bound.
    sessions.apply(sessions.manifest("too-big"))

    def refused() -> dict | None:
        ready = sessions.condition("too-big", "Ready")
        return ready if ready and ready["reason"] == "SpoolTooSmall" else None

    ready = wait_for(refused, 30, "Ready=False, reason SpoolTooSmall")
    assert ready["status"] == "False"
    assert f"more than the recorder's spool bound of {BOUND} bytes" in ready["message"], ready
    assert "spec.chunking.maxBytes" in ready["message"], ready
    assert sessions.status("too-big")["phase"] == "Pending"
    time.sleep(3)  # a retry or two later: still no recorder pod, still refused
    assert sessions.pods("too-big") == []
    assert sessions.condition("too-big", "Ready")["reason"] == "SpoolTooSmall"
    # One Warning, not one per retry.
    events = [e for e in sessions.events("too-big") if e["reason"] == "SpoolTooSmall"]
    assert [e["type"] for e in events] == ["Warning"], events
    assert events[0].get("count", 1) == 1, events
