"""A session's status never lies (issue 16): lost pods, spec edits, finished sessions.

Driven through kubectl against the real apiserver, with the operator and the stand-in
recorder (the operator's reactions are what is tested here; test_recording_e2e.py has
the real recorder's side: the declared gap after a lost pod).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lucid_common import contract
from lucid_devstack.operator_proc import OperatorProcess
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


def _kubectl(sessions: Sessions, *args: str) -> str:
    return sessions.stack.kubectl(*args, "-n", sessions.namespace).stdout


def _columns(table: str) -> dict[str, str]:
    """The one row of `kubectl get` by column ("0 B" is one cell: cut at header offsets)."""
    header, row = table.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    return {name: row[a:b].strip() for name, a, b in zip(names, starts, ends, strict=True)}


def _reasons(sessions: Sessions, name: str) -> list[str]:
    return [e["reason"] for e in sessions.events(name)]


def _event(sessions: Sessions, name: str, reason: str) -> dict:
    return wait_for(lambda: next((e for e in sessions.events(name) if e["reason"] == reason),
                                 None), 30, f"{name}: event {reason}")


def _recording_in(sessions: Sessions, name: str, pod: str) -> dict:
    return wait_for(lambda: (s := sessions.status(name)).get("podName") == pod
                    and s.get("phase") == "Recording" and s, 60,
                    f"{name} recording in pod {pod}")


def test_a_deleted_recorder_pod_is_replaced_then_the_session_fails_with_the_truth(
        operator, sessions: Sessions):
    sessions.apply(sessions.manifest("lost", retry={"maxRetries": 1, "backoffSeconds": 1,
                                                    "maxBackoffSeconds": 2}))
    sessions.wait_phase("lost", "Recording")
    _kubectl(sessions, "delete", "pod", "lost-recorder-0", "--wait=false")

    # Not Completed: a new pod continues, counted against retry.maxRetries.
    status = _recording_in(sessions, "lost", "lost-recorder-1")
    assert status["retries"] == 1 and "stopReason" not in status
    assert sessions.get("lost")["spec"]["state"] == "Recording"
    lost = _event(sessions, "lost", "RecorderLost")
    assert lost["type"] == "Warning"
    # Seen while its deletion is under way, or once it has ended: both say the truth.
    assert any(f"lost-recorder-0 {how} while spec.state is Recording" in lost["message"]
               for how in ("ended", "is being deleted")), lost["message"]
    assert "continues the recording after a declared gap" in lost["message"]
    assert "Completed" not in _reasons(sessions, "lost")

    # Past retry.maxRetries: Failed, saying why; never "completed (StoppedBySpec)".
    _kubectl(sessions, "delete", "pod", "lost-recorder-1", "--wait=false")
    status = sessions.wait_phase("lost", "Failed", timeout=60)
    assert "stopReason" not in status
    ready = sessions.condition("lost", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RecorderLost"
    assert any(f"lost-recorder-1 {how} while spec.state is Recording" in ready["message"]
               for how in ("ended", "is being deleted")), ready["message"]
    assert "retry.maxRetries is 1" in ready["message"]
    succeeded = sessions.condition("lost", "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "RecorderLost"
    table = _kubectl(sessions, "get", "rsess", "lost")
    print(table)
    assert _columns(table)["PHASE"] == "Failed" and _columns(table)["READY"] == "False"
    assert [p["metadata"]["name"] for p in sessions.pods("lost")
            if not p["metadata"].get("deletionTimestamp")] == []


def test_a_completed_session_reads_as_success(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("done"))
    sessions.wait_phase("done", "Recording")
    sessions.apply(sessions.manifest("done", state="Stopped"))
    sessions.wait_phase("done", "Completed")
    # The convention of one-shot jobs: a condition to wait for, and Ready not "False".
    _kubectl(sessions, "wait", "--for=condition=Succeeded", "--timeout=30s", "rsess/done")
    table = _kubectl(sessions, "get", "rsess", "done")
    print(table)
    columns = _columns(table)
    assert columns["PHASE"] == "Completed" and columns["READY"] == "True", table
    ready = sessions.condition("done", "Ready")
    assert ready["reason"] == "Completed" and ready["message"] == "recording completed " \
        "(StoppedBySpec)"
    succeeded = sessions.condition("done", "Succeeded")
    assert succeeded["status"] == "True" and succeeded["reason"] == "StoppedBySpec"
    described = _kubectl(sessions, "describe", "rsess", "done")
    print(described)
    assert "Succeeded" in described and "StoppedBySpec" in described


def test_spec_edits_are_applied_and_said(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("edited"))
    sessions.wait_phase("edited", "Recording")

    # Read by the recorder at start: the pod is replaced, the recording goes on in it.
    _kubectl(sessions, "patch", "rsess", "edited", "--type=merge",
             "-p", json.dumps({"spec": {"chunking": {"maxSeconds": 5}}}))
    event = _event(sessions, "edited", "Reconfiguring")
    assert event["message"] == ("spec.chunking changed (generation 2): replacing recorder pod "
                                "edited-recorder-0; the recording continues in a new pod after "
                                "a declared gap")
    status = _recording_in(sessions, "edited", "edited-recorder-1")
    assert status["observedGeneration"] == 2 and status["retries"] == 0
    (pod,) = [p for p in sessions.pods("edited") if p["metadata"]["name"] == "edited-recorder-1"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert json.loads(env[contract.ENV_SESSION_SPEC])["chunking"]["maxSeconds"] == 5
    assert "RecorderLost" not in _reasons(sessions, "edited")  # a replacement, not a loss

    # Read by the operator: applied at once, and said so.
    _kubectl(sessions, "patch", "rsess", "edited", "--type=merge",
             "-p", json.dumps({"spec": {"maxDurationSeconds": 3600}}))
    applied = _event(sessions, "edited", "SpecApplied")
    assert applied["message"] == "spec.maxDurationSeconds applied (generation 3)"
    wait_for(lambda: sessions.status("edited").get("observedGeneration") == 3, 30,
             "observedGeneration 3")
    assert sessions.status("edited")["podName"] == "edited-recorder-1"

    # An ended session applies nothing, but says so and catches up.
    sessions.apply(sessions.manifest("edited", state="Stopped", maxDurationSeconds=3600,
                                     chunking={"maxSeconds": 5}))
    sessions.wait_phase("edited", "Completed")
    _kubectl(sessions, "patch", "rsess", "edited", "--type=merge",
             "-p", json.dumps({"spec": {"recording": {"maxFps": 2}}}))
    ignored = _event(sessions, "edited", "SpecNotApplied")
    assert "spec.recording changed (generation 5), but the session is Completed" in \
        ignored["message"]
    wait_for(lambda: sessions.status("edited").get("observedGeneration") == 5, 30,
             "observedGeneration 5 on the ended session")
    print(_kubectl(sessions, "get", "events", "--field-selector",
                   "involvedObject.name=edited", "--sort-by=.lastTimestamp"))


def test_ended_sessions_are_deletable_without_an_operator(operator: OperatorProcess,
                                                          sessions: Sessions):
    sessions.apply(sessions.manifest("ended"))
    sessions.apply(sessions.manifest("running"))
    sessions.wait_phase("ended", "Recording")
    sessions.wait_phase("running", "Recording")
    sessions.apply(sessions.manifest("ended", state="Stopped"))
    sessions.wait_phase("ended", "Completed")
    # Nothing is left to flush: the finalizer goes with the recording.
    wait_for(lambda: not sessions.get("ended")["metadata"].get("finalizers"), 30,
             "the Completed session to lose its finalizer")
    assert "lucid.dev/finalizer" in sessions.get("running")["metadata"]["finalizers"]

    operator.stop()  # as after `helm uninstall`
    try:
        began = time.monotonic()
        _kubectl(sessions, "delete", "rsess", "ended", "--timeout=30s")
        assert sessions.get("ended") is None
        assert time.monotonic() - began < 30
        # A session still recording keeps its finalizer; NOTES and docs/operations.md give
        # the command that lets it go without the operator (its recorder does not flush).
        _kubectl(sessions, "delete", "rsess", "running", "--wait=false")
        time.sleep(2)
        assert sessions.get("running") is not None
        _kubectl(sessions, "patch", "rsess", "running", "--type=merge",
                 "-p", '{"metadata":{"finalizers":null}}')
        wait_for(lambda: sessions.get("running") is None, 30, "the patched session to go")
    finally:
        operator.start()


def test_notes_give_the_command_for_sessions_left_behind():
    repo = Path(__file__).resolve().parents[2]
    command = ("kubectl patch rsess NAME -n NS --type=merge "
               "-p '{\"metadata\":{\"finalizers\":null}}'")
    assert command in (repo / "charts" / "lucid" / "templates" / "NOTES.txt").read_text()
    assert command in (repo / "docs" / "operations.md").read_text()
