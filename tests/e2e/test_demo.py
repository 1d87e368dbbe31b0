"""`make demo`'s code path with two sessions at once: the real recorder, xrdp and MinIO.

The local kubelet runs every pod on the host's network, so whatever the demo's operator
tells its recorders to bind must not collide between two of them (issue 16, item 6).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lucid_devstack import demo
from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def demo_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(stack, settings=demo.operator_settings()).start()
    yield running
    running.stop()


def _chunks_stored(sessions: Sessions, name: str) -> int:
    return int((sessions.status(name).get("pipeline") or {}).get("chunksStored", 0))


def test_two_demo_sessions_record_at_once(demo_operator: OperatorProcess, sessions: Sessions,
                                          tmp_path: Path):
    stack = sessions.stack
    keys = keygen(tmp_path / "auditor")
    # The demo's own Secrets (the fixture's placeholder key would not pass the recorder).
    stack.kubectl("delete", "secret", "--all", "-n", sessions.namespace)
    for name, data in demo.secrets(stack, keys.public.read_text()).items():
        stack.kubectl("apply", "-f", "-",
                      input_text=demo.secret_manifest(name, data, sessions.namespace))
    names = ("demo", "demo-second")
    for name in names:
        stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(
            demo.session_manifest(stack, name, sessions.namespace)))
    for name in names:
        sessions.wait_phase(name, "Recording", timeout=120)
    # examples/session.yaml closes a chunk every 10 s: both recorders store some.
    for name in names:
        wait_for(lambda name=name: _chunks_stored(sessions, name) >= 1, 90,
                 f"{name}: a stored chunk")
    print(stack.kubectl("get", "rsess", "-n", sessions.namespace).stdout)
    for name in names:
        (pod,) = sessions.pods(name)
        (container,) = pod["status"]["containerStatuses"]
        assert container["restartCount"] == 0, container
        assert "running" in container["state"], container
        log = stack.kubelet.pod_log(sessions.namespace, pod["metadata"]["name"], "recorder")
        assert "Address already in use" not in log.read_text()
    for name in names:
        stack.kubectl("patch", "rsess", name, "-n", sessions.namespace, "--type=merge",
                      "-p", '{"spec":{"state":"Stopped"}}')
    for name in names:
        status = sessions.wait_phase(name, "Completed", timeout=120)
        assert status["pipeline"]["state"] == "Finalized", status
