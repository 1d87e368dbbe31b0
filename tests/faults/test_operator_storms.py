"""Operator SIGKILL in the middle of a create storm and of a delete storm (stand-in recorder).

A killed operator leaves work half done: pods created but not yet recorded in
status, finalizers not yet removed. The restarted one must finish it without
a second pod for any session and without stranding a session or a pod.
"""

from __future__ import annotations

import time

import pytest
import yaml
from kubernetes import client

from lucid_common.api import GROUP, PLURAL, VERSION
from lucid_devstack.operator_proc import OperatorProcess
from tests.e2e.support import Sessions, wait_for
from tests.faults.support import (
    assert_no_secret_in_logs,
    assert_one_pod_each,
    assert_truthful_recording,
    pods_per_session,
    wait_gone,
    wait_recording,
)

pytestmark = pytest.mark.stack

STORM = 20
# Into the storm, not before or after it: some pods exist, most sessions have no phase yet.
KILL_AFTER_SECONDS = 2.0


def test_operator_sigkill_during_create_and_delete_storms(operator: OperatorProcess,
                                                          sessions: Sessions):
    stack = sessions.stack
    names = [f"storm-{i:02d}" for i in range(STORM)]
    # One kubectl call, so the operator sees all of them arrive at once.
    stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(
        [sessions.manifest(name) for name in names]))
    time.sleep(KILL_AFTER_SECONDS)
    operator.kill()

    most: dict[str, int] = {}

    def count_pods() -> None:
        # A duplicate that is created and cleaned up again would escape the final check.
        for name, count in pods_per_session(sessions).items():
            most[name] = max(most.get(name, 0), count)

    # Otherwise the kill missed the storm and the test proves nothing: shorten the wait.
    assert not all(sessions.status(n).get("phase") == "Recording" for n in names), \
        "the storm was over before the kill"
    operator.start()

    wait_recording(sessions, names, timeout=40, on_poll=count_pods)
    assert {n: c for n, c in most.items() if c > 1} == {}
    assert_one_pod_each(sessions, names)
    for name in names:
        assert_truthful_recording(sessions, name)

    stack.kubectl("delete", "recordingsessions", "--all", "-n", sessions.namespace,
                  "--wait=false")
    # Mid-way: each deletion waits for its recorder to flush, so some are still pending.
    wait_for(lambda: sum(pods_per_session(sessions).values()) < STORM, 30,
             "the first recorder pods to go")
    operator.kill()
    left = client.CustomObjectsApi(sessions.api).list_namespaced_custom_object(
        GROUP, VERSION, sessions.namespace, PLURAL)["items"]
    assert left, "the delete storm was over before the kill"
    operator.start()
    wait_gone(sessions, 120)
    assert_no_secret_in_logs(stack)
