import datetime as dt

from lucid_operator.conditions import (
    READY,
    RECORDER_RUNNING,
    ConditionUpdate,
    Observation,
    Phase,
    PodView,
    derive_phase,
    merge_conditions,
    retry_delay,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_transition_time_moves_only_when_status_flips():
    first = merge_conditions([], [ConditionUpdate(READY, False, "Pending", "waiting")], 1, T0)
    again = merge_conditions(first, [ConditionUpdate(READY, False, "Connecting", "x")], 2, T1)
    assert again[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert again[0]["reason"] == "Connecting"
    assert again[0]["observedGeneration"] == 2
    flipped = merge_conditions(again, [ConditionUpdate(READY, True, "Recording")], 2, T1)
    assert flipped[0]["status"] == "True"
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_merge_is_idempotent_and_keeps_other_conditions():
    start = merge_conditions([], [ConditionUpdate("A", True, "Ok"),
                                  ConditionUpdate("B", None, "Unknown")], 1, T0)
    update = [ConditionUpdate("A", True, "Ok")]
    once = merge_conditions(start, update, 1, T1)
    twice = merge_conditions(once, update, 1, T1)
    assert once == twice
    assert [c["type"] for c in twice] == ["A", "B"]
    assert twice[1]["status"] == "Unknown"
    assert set(twice[0]) == {"type", "status", "reason", "message", "observedGeneration",
                             "lastTransitionTime"}


def _obs(**kwargs):
    base = {"desired_state": "Recording", "deleting": False, "previous_phase": None, "pod": None}
    base.update(kwargs)
    return Observation(**base)


def _ready(updates):
    return next(u for u in updates if u.type == READY)


def test_phase_walks_pending_connecting_recording():
    assert derive_phase(_obs())[0] is Phase.PENDING
    running = PodView("p", "Running")
    phase, updates = derive_phase(_obs(pod=running))
    assert phase is Phase.CONNECTING and _ready(updates).status is False
    phase, updates = derive_phase(_obs(pod=running, recorder_capturing=True))
    assert phase is Phase.RECORDING and _ready(updates).status is True


def test_failed_pod_carries_reason_and_message():
    pod = PodView("p", "Failed", exit_code=2, reason="Error", message="boom: bad key")
    phase, updates = derive_phase(_obs(pod=pod))
    assert phase is Phase.FAILED
    running = next(u for u in updates if u.type == RECORDER_RUNNING)
    assert running.reason == "Error"
    assert "exit code 2" in running.message and "boom: bad key" in running.message


def test_stop_goes_through_stopping_to_completed():
    running = PodView("p", "Running", terminating=True)
    assert derive_phase(_obs(desired_state="Stopped", pod=running))[0] is Phase.STOPPING
    done = PodView("p", "Succeeded", exit_code=0)
    assert derive_phase(_obs(desired_state="Stopped", pod=done))[0] is Phase.COMPLETED
    gone = _obs(desired_state="Stopped", pod=None, pod_gone_after_start=True)
    phase, updates = derive_phase(gone)
    assert phase is Phase.COMPLETED and "StoppedBySpec" in _ready(updates).message


def test_terminal_phase_sticks():
    pod = PodView("p", "Running")
    assert derive_phase(_obs(previous_phase=Phase.COMPLETED, pod=pod)) == (Phase.COMPLETED, [])


def test_waiting_reason_is_reported_while_pending():
    pod = PodView.from_pod({
        "metadata": {"name": "p"},
        "status": {"phase": "Pending", "containerStatuses": [
            {"state": {"waiting": {"reason": "CreateContainerConfigError",
                                   "message": 'secret "rdp" not found'}}}]},
    })
    phase, updates = derive_phase(_obs(pod=pod))
    assert phase is Phase.PENDING
    running = next(u for u in updates if u.type == RECORDER_RUNNING)
    assert running.reason == "CreateContainerConfigError"
    assert 'secret "rdp" not found' in running.message


def test_retry_delay_doubles_and_caps():
    assert [retry_delay(n, 5, 60) for n in range(6)] == [5, 10, 20, 40, 60, 60]


def test_degraded_mirrors_the_recorders_message():
    from lucid_operator.conditions import DEGRADED, degraded_update

    problem = {"message": "storage unavailable (TransientStorageError); retry 3 in 2.0s"}
    update = degraded_update(problem, [])
    assert update is not None and update.type == DEGRADED and update.status is True
    current = merge_conditions([], [update], 1, T0)
    assert degraded_update(problem, current) is None  # nothing new: no write
    healed = degraded_update({"message": ""}, current)
    assert healed is not None and healed.status is False and healed.reason == "Healthy"
    assert degraded_update({}, []) is None


def test_completed_reads_as_success_with_its_reason():
    from lucid_operator.conditions import SUCCEEDED

    done = PodView("p", "Succeeded", exit_code=0)
    phase, updates = derive_phase(_obs(desired_state="Stopped", pod=done))
    assert phase is Phase.COMPLETED
    assert _ready(updates).status is True and _ready(updates).reason == "Completed"
    succeeded = next(u for u in updates if u.type == SUCCEEDED)
    assert succeeded.status is True and succeeded.reason == "StoppedBySpec"
    phase, updates = derive_phase(_obs(pod=done, stop_reason="MaxDurationReached"))
    assert phase is Phase.COMPLETED and "MaxDurationReached" in _ready(updates).message
    failed = derive_phase(_obs(pod=PodView("p", "Failed", exit_code=3)))[1]
    assert next(u for u in failed if u.type == SUCCEEDED).status is False


def test_a_pod_that_ends_while_the_spec_records_is_lost_not_completed():
    from lucid_operator.conditions import RECORDER_LOST, pod_lost

    exited = _obs(pod=PodView("s-recorder-0", "Succeeded", exit_code=0))
    phase, updates = derive_phase(exited)
    assert phase is Phase.PENDING and pod_lost(exited)
    assert _ready(updates).reason == RECORDER_LOST
    assert "s-recorder-0 ended while spec.state is Recording" in _ready(updates).message
    gone = _obs(pod=None, pod_gone_after_start=True, pod_name="s-recorder-0")
    assert pod_lost(gone) and derive_phase(gone)[0] is Phase.PENDING
    # Being deleted, still flushing: said at once, not yet replaced.
    terminating = _obs(pod=PodView("s-recorder-0", "Running", terminating=True))
    phase, updates = derive_phase(terminating)
    assert phase is Phase.PENDING and not pod_lost(terminating)
    assert "is being deleted while spec.state is Recording" in _ready(updates).message
    running = next(u for u in updates if u.type == RECORDER_RUNNING)
    assert running.reason == "PodTerminating"
    # Only the spec, the operator's stop reason or deletion complete a session.
    for stopping in ({"desired_state": "Stopped"}, {"deleting": True},
                     {"stop_reason": "MaxDurationReached"}):
        obs = _obs(pod=PodView("s-recorder-0", "Succeeded", exit_code=0), **stopping)
        assert not pod_lost(obs) and derive_phase(obs)[0] is Phase.COMPLETED, stopping
    # A failed pod is a failure, not a loss.
    assert not pod_lost(_obs(pod=PodView("p", "Succeeded", exit_code=3)))


def test_configuration_degraded_is_not_the_recorders_to_clear():
    from lucid_operator.conditions import (
        DEGRADED,
        config_degraded,
        config_recovered,
        degraded_update,
    )

    rejected = merge_conditions([], [config_degraded("PodRejected", "cpu request > limit")], 1, T0)
    assert degraded_update({"message": ""}, rejected) is None
    assert degraded_update({"message": "storage unavailable"}, rejected) is None
    assert config_recovered(rejected, ["SpoolTooSmall"]) == []
    (cleared,) = config_recovered(rejected, ["PodRejected"])
    assert cleared.type == DEGRADED and cleared.status is False
    assert config_recovered(merge_conditions(rejected, [cleared], 1, T1), ["PodRejected"]) == []
