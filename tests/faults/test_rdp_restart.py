"""The RDP server drops the recorder's connection mid-session (real recorder, real xrdp).

xrdp forks one process per connection; SIGKILL of that fork is what a
restarted RDP server looks like to the client. The recorder must reconnect in
the same pod (no crash restart, no second pod), mark the lost span as a Gap in
the recording, keep sealing chunks, and verify clean after the stop.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _cli, _start_recording
from tests.faults.support import assert_no_secret_in_logs, assert_one_pod_each, stop_and_verify

pytestmark = pytest.mark.stack

NAME = "rdp-drop"
BUCKET = "faults-rdp"


def _children(pid: int) -> set[int]:
    """Processes whose parent is pid (xrdp forks one per connection)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # the process exited while we listed /proc
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def test_rdp_server_drop_mid_session_reconnects_and_marks_a_gap(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    xrdp = stack.desktop.process_groups()["xrdp"]
    # Taken before the recorder connects, so the difference is its connection only.
    idle = _children(xrdp)
    manifest, keys = _start_recording(sessions, NAME, BUCKET, 1, tmp_path / "keys")
    wait_for(lambda: _chunks_stored(sessions, NAME) >= 2, 60, "the first chunks")
    pod_uid = sessions.pods(NAME)[0]["metadata"]["uid"]

    serving = _children(xrdp) - idle
    assert serving, "no xrdp process serves the recorder"
    for pid in serving:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    dropped_at = _chunks_stored(sessions, NAME)

    wait_for(lambda: _children(xrdp) - idle - serving, 60, "the recorder to reconnect to xrdp")
    stack.desktop.type_text("typed after the reconnect")
    wait_for(lambda: _chunks_stored(sessions, NAME) >= dropped_at + 3, 60,
             "chunks to keep growing after the reconnect")

    def healthy_again() -> dict | None:
        status = sessions.status(NAME)
        degraded = sessions.condition(NAME, "Degraded")
        ok = (status.get("phase") == "Recording"
              and (status.get("pipeline") or {}).get("state") == "Capturing"
              and (degraded is None or degraded["status"] == "False"))
        return status if ok else None

    wait_for(healthy_again, 60, "phase Recording, pipeline Capturing, not Degraded")
    pods = sessions.pods(NAME)
    assert [p["metadata"]["uid"] for p in pods] == [pod_uid]
    # Reconnected inside the process: a crash restart would show as a RecorderRestart gap.
    assert pods[0]["status"]["containerStatuses"][0].get("restartCount", 0) == 0
    assert_one_pod_each(sessions, [NAME])

    _status, result, source = stop_and_verify(sessions, manifest, keys.private)
    # A dropped connection is a gap inside the stream, not a sealing gap (no key epoch change).
    assert result["gaps"] == [], result["gaps"]

    segments = tmp_path / "seg"
    decrypted = _cli(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(segments))
    assert decrypted.returncode == 0, decrypted.stderr
    info = _cli(stack, "lucid-play", "info", str(segments))
    assert info.returncode == 0, info.stderr
    gaps = re.search(r"^gaps\s+(\d+)$", info.stdout, re.MULTILINE)
    assert gaps and int(gaps[1]) >= 1, info.stdout
    assert_no_secret_in_logs(stack)
