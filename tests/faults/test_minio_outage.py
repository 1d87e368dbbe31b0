"""MinIO down and back while the real recorder records through the operator.

tests/stack covers the pipeline alone through an outage; here the whole path
runs (operator, pod, status), so the status can be judged during the fault
as well as after it: Degraded while storage is down, healthy once it drains.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _start_recording
from tests.faults.support import assert_no_secret_in_logs, assert_one_pod_each, stop_and_verify

pytestmark = pytest.mark.stack

NAME = "minio-down"
BUCKET = "faults-minio"
# Several one-second chunks pile up in the spool meanwhile, well under its bound.
DOWN_SECONDS = 10.0


def test_minio_outage_mid_session_degrades_then_drains_everything(
        recorder_operator, sessions: Sessions, tmp_path: Path):
    stack = sessions.stack
    manifest, keys = _start_recording(sessions, NAME, BUCKET, 1, tmp_path / "keys")
    wait_for(lambda: _chunks_stored(sessions, NAME) >= 2, 60, "the first chunks")
    pod_uid = sessions.pods(NAME)[0]["metadata"]["uid"]

    def degraded(status: str) -> dict | None:
        condition = sessions.condition(NAME, "Degraded")
        return condition if condition and condition["status"] == status else None

    stack.minio.stop()
    stopped_at = time.monotonic()
    try:
        down = wait_for(lambda: degraded("True"), 30, "Degraded=True during the outage")
        assert "storage unavailable" in down["message"], down
        assert sessions.status(NAME)["phase"] == "Recording"
        time.sleep(max(0.0, stopped_at + DOWN_SECONDS - time.monotonic()))
        during = _chunks_stored(sessions, NAME)
    finally:
        stack.minio.start()  # whatever happens, later tests need MinIO back

    wait_for(lambda: _chunks_stored(sessions, NAME) >= during + 5, 90,
             "the spooled chunks to drain after MinIO is back")
    healed = wait_for(lambda: degraded("False"), 60, "Degraded=False once storage answers")
    assert healed["lastTransitionTime"] >= down["lastTransitionTime"]
    assert sessions.status(NAME)["phase"] == "Recording"
    assert [p["metadata"]["uid"] for p in sessions.pods(NAME)] == [pod_uid]
    assert_one_pod_each(sessions, [NAME])

    _status, result, _source = stop_and_verify(sessions, manifest, keys.private)
    # The spool held everything through the outage: nothing dropped, no restart.
    assert result["gaps"] == [], result["gaps"]
    assert_no_secret_in_logs(stack)
