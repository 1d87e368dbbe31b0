"""kube-apiserver and etcd restarts while a session records (stand-in recorder).

The operator's watches break and its API calls fail for a few seconds; the
recorder pod must keep running untouched, no second pod may appear, and the
operator must pick its watches up again, which a session created and a stop
requested after the restart prove.
"""

from __future__ import annotations

import pytest

from lucid_devstack.stack import Stack
from tests.e2e.support import Sessions, wait_for
from tests.faults.support import (
    apiserver_ready,
    assert_no_secret_in_logs,
    assert_one_pod_each,
    assert_truthful_recording,
    etcd_ready,
    restart,
    wait_recording,
)

pytestmark = pytest.mark.stack

# Long enough for every client's request and watch to fail, short enough for a quick test.
DOWN_SECONDS = 5.0


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restart_mid_session(operator, sessions: Sessions, component: str):
    stack: Stack = sessions.stack
    sessions.apply(sessions.manifest("before"))
    sessions.wait_phase("before", "Recording")
    pod_before = sessions.pods("before")[0]["metadata"]["uid"]

    ready = apiserver_ready(stack) if component == "kube-apiserver" else etcd_ready(stack)
    restart(stack.kube.procs[component], DOWN_SECONDS, ready, f"{component} ready again")
    # etcd back does not mean the apiserver serves again: wait for both before judging.
    wait_for(apiserver_ready(stack), 60, "the apiserver to serve after the restart")

    # A session applied after the fault reaches Recording only if the operator's
    # watch came back: a silently dead watch would leave it without a phase.
    sessions.apply(sessions.manifest("after"))
    wait_recording(sessions, ["after"], timeout=40)

    assert [p["metadata"]["uid"] for p in sessions.pods("before")] == [pod_before]
    assert_one_pod_each(sessions, ["before", "after"])
    assert_truthful_recording(sessions, "before")
    assert_truthful_recording(sessions, "after")

    sessions.apply(sessions.manifest("before", state="Stopped"))
    status = sessions.wait_phase("before", "Completed", timeout=60)
    assert status["stopReason"] == "StoppedBySpec"
    assert status["pipeline"]["state"] == "Finalized"
    running = sessions.condition("before", "RecorderRunning")
    assert running and running["status"] == "False", status
    # The stopped recorder's pod may linger as Succeeded until deleted; never two.
    assert len(sessions.pods("before")) <= 1
    assert len(sessions.pods("after")) == 1
    assert_no_secret_in_logs(stack)
