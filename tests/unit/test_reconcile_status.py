"""What the operator makes of the recorder's reports: NoScreenUpdates, chunks lost, failures.

conditions.py is pure; the reconcile functions run against a fake Kube that keeps
one session and records pod deletions.
"""

from __future__ import annotations

import copy
from typing import Any

from lucid_common import contract
from lucid_operator import reconcile
from lucid_operator.conditions import (
    CHUNKS_NOT_UPLOADED,
    DEGRADED,
    NO_SCREEN_UPDATES,
    READY,
    WAITING_FOR_SCREEN,
    Observation,
    Phase,
    PodView,
    degraded_update,
    derive_phase,
)
from lucid_operator.settings import OperatorSettings

NO_SCREEN = ("only the server's own screen (223 updates, no full frame of the session) "
             "within 60s of connecting to 10.0.0.5:3389: ... check Secret rdp-login")
LOST = ("recording incomplete: 3 sealed chunks not uploaded (seq 12-14, 1.2 MiB) and no final "
        "manifest; they are lost with this pod: storage did not answer within the 60s grace")


def _obs(**kwargs: Any) -> Observation:
    base: dict[str, Any] = {"desired_state": "Recording", "deleting": False,
                            "previous_phase": Phase.RECORDING,
                            "pod": PodView("s-recorder-0", "Running"),
                            "recorder_capturing": True}
    base.update(kwargs)
    return Observation(**base)


def _ready(updates: list[Any]) -> Any:
    return next(u for u in updates if u.type == READY)


def test_missing_screen_is_recording_but_not_ready():
    phase, updates = derive_phase(_obs(screen=contract.SCREEN_MISSING, pipeline_message=NO_SCREEN))
    assert phase is Phase.RECORDING
    ready = _ready(updates)
    assert (ready.status, ready.reason, ready.message) == (False, NO_SCREEN_UPDATES, NO_SCREEN)


def test_waiting_for_the_screen_is_not_ready_yet_and_shown_is():
    _, updates = derive_phase(_obs(screen=contract.SCREEN_WAITING))
    assert (_ready(updates).status, _ready(updates).reason) == (False, WAITING_FOR_SCREEN)
    for screen in (contract.SCREEN_SHOWN, contract.SCREEN_UNCHECKED, ""):
        _, updates = derive_phase(_obs(screen=screen))
        assert (_ready(updates).status, _ready(updates).reason) == (True, "Recording"), screen


def test_degraded_says_no_screen_updates_with_the_recorders_words():
    pipeline = {"state": "Capturing", "screen": "Missing", "message": NO_SCREEN}
    update = degraded_update(pipeline, [])
    assert update is not None
    assert (update.type, update.status, update.reason, update.message) == (
        DEGRADED, True, NO_SCREEN_UPDATES, NO_SCREEN)
    mirrored = [{"type": DEGRADED, "status": "True", "reason": NO_SCREEN_UPDATES,
                 "message": NO_SCREEN}]
    assert degraded_update(pipeline, mirrored) is None
    # The same words under the generic reason are not enough: the reason changes.
    generic = [{**mirrored[0], "reason": "RecorderDegraded"}]
    assert degraded_update(pipeline, generic) is not None
    healed = degraded_update({"state": "Capturing", "screen": "Shown", "message": ""}, mirrored)
    assert healed is not None and healed.status is False


def test_a_recorder_that_lost_chunks_fails_with_its_last_words():
    pod = PodView("s-recorder-0", "Failed", exit_code=6, message="json log lines\n...")
    phase, updates = derive_phase(_obs(pod=pod, desired_state="Stopped", incomplete=LOST,
                                       previous_phase=Phase.STOPPING))
    assert phase is Phase.FAILED
    ready = _ready(updates)
    assert ready.reason == CHUNKS_NOT_UPLOADED
    assert ready.message == f"recorder pod s-recorder-0 failed with exit code 6: {LOST}"


class FakeKube:
    def __init__(self, session: dict[str, Any], pod: dict[str, Any] | None = None) -> None:
        self.session = session
        self.pod = pod
        self.deleted: list[tuple[str, int]] = []

    def read_session(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.session)

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.pod)

    def delete_pod(self, namespace: str, name: str, grace: int, uid: str | None = None) -> bool:
        self.deleted.append((name, grace))
        return True

    def update_session_status(self, namespace: str, name: str, mutate: Any) -> Any:
        patch = mutate(copy.deepcopy(self.session))
        if patch:
            self.session.setdefault("status", {}).update(patch)
        return self.session


def _session(**status: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "s", "uid": "u-1", "generation": 1},
            "spec": {}, "status": {"podName": "s-recorder-0", **status}}


SETTINGS = OperatorSettings(termination_grace_seconds=45, delete_timeout_seconds=90)


def test_a_recorder_that_gave_up_keeps_its_grace_and_fails_once():
    kube = FakeKube(_session(phase="Recording", pipeline={
        "state": "Failed", "message": "storage failed: rejected (InvalidAccessKeyId)"}))
    events = reconcile.refresh(kube, SETTINGS, kube.session)  # type: ignore[arg-type]
    assert [(e.type, e.reason) for e in events] == [("Warning", "Failed")]
    assert kube.deleted == [("s-recorder-0", 45)]  # never grace 0: it may still flush
    assert kube.session["status"]["phase"] == "Failed"
    # The same report seen again (a second watch event, another handler): no second Event.
    stale = _session(phase="Recording", pipeline=kube.session["status"]["pipeline"])
    assert reconcile._recorder_gave_up(kube, SETTINGS, stale, "again") == []  # type: ignore[arg-type]


def test_needs_refresh_when_ready_disagrees_with_the_screen():
    ready = [{"type": READY, "status": "True", "reason": "Recording"}]
    missing = _session(phase="Recording", conditions=ready,
                       pipeline={"state": "Capturing", "screen": "Missing", "message": "x"})
    assert reconcile._ready_stale(missing)
    shown = _session(phase="Recording", conditions=ready,
                     pipeline={"state": "Capturing", "screen": "Shown", "message": ""})
    assert not reconcile.needs_refresh(shown)
    assert not reconcile._ready_stale(_session(phase="Completed", conditions=ready,
                                               pipeline={"screen": "Missing"}))


def _failed_pod(code: int, message: str) -> dict[str, Any]:
    return {"metadata": {"name": "s-recorder-0"}, "status": {
        "phase": "Failed", "containerStatuses": [{"restartCount": 0, "state": {
            "terminated": {"exitCode": code, "message": message}}}]}}


def test_last_words_of_a_deleted_session():
    incomplete = _session(pipeline={"state": "Incomplete", "message": LOST})
    (event,) = reconcile.last_words(incomplete, None)
    assert (event.type, event.reason) == ("Warning", CHUNKS_NOT_UPLOADED)
    assert event.message == (
        f"recorder pod s-recorder-0 stopped before storage took everything: {LOST}")
    # Announced already when the pod failed (the Ready reason says so): not twice.
    told = _session(pipeline={"state": "Incomplete", "message": LOST},
                    conditions=[{"type": READY, "status": "False",
                                 "reason": CHUNKS_NOT_UPLOADED}])
    assert reconcile.last_words(told, None) == []
    assert reconcile.last_words(_session(pipeline={"state": "Finalized"}), None) == []
    (killed,) = reconcile.last_words(_session(pipeline={"state": "Capturing"}),
                                     _failed_pod(137, "line one\nuploading chunk 7"))
    assert killed.reason == "RecordingIncomplete"
    assert "exit code 137 before it wrote its final manifest" in killed.message
    assert killed.message.endswith("its last words: uploading chunk 7")


def test_finalize_posts_the_last_words_once_the_pod_is_gone():
    session = _session(phase="Stopping", pipeline={"state": "Incomplete", "message": LOST})
    session["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    kube = FakeKube(session, pod=None)
    events = reconcile.finalize(kube, SETTINGS, session)  # type: ignore[arg-type]
    assert [e.reason for e in events] == [CHUNKS_NOT_UPLOADED]


def test_degraded_is_announced_once_per_change_not_per_message():
    first = _session(phase="Recording", pipeline={
        "state": "Capturing", "message": "storage unavailable; retry 1 in 0.5s"})
    kube = FakeKube(first)
    events = reconcile.refresh(kube, SETTINGS, copy.deepcopy(first))  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["Degraded"]
    kube.session["status"]["pipeline"]["message"] = "storage unavailable; retry 2 in 1.0s"
    assert reconcile.refresh(kube, SETTINGS, copy.deepcopy(kube.session)) == []  # type: ignore[arg-type]
    degraded = next(c for c in kube.session["status"]["conditions"] if c["type"] == DEGRADED)
    assert degraded["message"] == "storage unavailable; retry 2 in 1.0s"  # kept current
    kube.session["status"]["pipeline"]["message"] = ""
    events = reconcile.refresh(kube, SETTINGS, copy.deepcopy(kube.session))  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["Recovered"]
