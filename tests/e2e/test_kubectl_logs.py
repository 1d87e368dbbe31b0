"""`kubectl logs` of a session's recorder pod, as a user reads it (issue 16, item 8).

The real operator starts the (stand-in) recorder; `kubectl logs` shows what it said, and
`kubectl logs -f`, started while it records, streams until the recorder has flushed and
exited after `spec.state: Stopped`, then returns by itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lucid_devstack.operator_proc import OperatorProcess
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

KUBECTL = str(Path(sys.executable).parent / "kubectl")


def test_kubectl_logs_of_a_recorder_and_follow_through_its_stop(operator: OperatorProcess,
                                                                 sessions: Sessions):
    stack, ns = sessions.stack, sessions.namespace
    sessions.apply(sessions.manifest("logged"))
    sessions.wait_phase("logged", "Recording")
    pod = sessions.status("logged")["podName"]

    shown = wait_for(lambda: (lambda out: out if "capturing" in out else None)(
        stack.kubectl("logs", pod, "-n", ns).stdout), 30, "the recorder's first words")
    print(f"$ kubectl logs {pod}\n{shown}")
    assert shown == "stand-in recorder: capturing\n"

    follow = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(stack.kube.kubeconfig), "logs", "-f", pod, "-n", ns],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "stand-in recorder: capturing\n"
        assert follow.poll() is None  # still following: the recorder records on
        stack.kubectl("patch", "rsess", "logged", "-n", ns, "--type=merge",
                      "-p", '{"spec":{"state":"Stopped"}}')
        rest, errors = follow.communicate(timeout=90)
    finally:
        if follow.poll() is None:
            follow.kill()
    print(f"$ kubectl logs -f {pod}\nstand-in recorder: capturing\n{rest}{errors}")
    assert follow.returncode == 0, errors
    assert rest == "stand-in recorder: SIGTERM received, flushed, exiting\n"
    sessions.wait_phase("logged", "Completed")
