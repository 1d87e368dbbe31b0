"""Checks shared by the fault tests: the issue's invariants, and control-plane restarts."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kubernetes import client

from lucid_common.api import GROUP, PLURAL, VERSION
from lucid_devstack.proc import Proc, http_ok
from lucid_devstack.stack import Stack
from tests.e2e.support import Sessions, wait_for
from tests.e2e.test_recording_e2e import _chunks_stored, _cli

SESSION_LABEL = "lucid.dev/session"


def restart(proc: Proc, down_seconds: float, ready: Callable[[], bool], what: str) -> None:
    """Stop a stack component, leave it down, start it again with the same argv and log."""
    proc.stop()
    time.sleep(down_seconds)
    proc.start()
    proc.wait_until(ready, timeout=120, what=what)


def apiserver_ready(stack: Stack) -> Callable[[], bool]:
    # kubectl carries the admin client certificate, so /readyz needs no SSL context here.
    return lambda: stack.kubectl("get", "--raw", "/readyz", check=False,
                                 timeout=10).returncode == 0


def etcd_ready(stack: Stack) -> Callable[[], bool]:
    return lambda: http_ok("127.0.0.1", stack.kube.etcd_port, "/health", None)


def pods_per_session(sessions: Sessions) -> Counter[str]:
    """Recorder pods in the namespace, counted per session label (unlabelled ones under '')."""
    listed = sessions.core.list_namespaced_pod(sessions.namespace)
    return Counter((p.metadata.labels or {}).get(SESSION_LABEL, "") for p in listed.items)


def assert_one_pod_each(sessions: Sessions, names: Iterable[str]) -> None:
    counts = pods_per_session(sessions)
    wanted = set(names)
    assert {n: counts[n] for n in wanted if counts[n] != 1} == {}, counts
    assert set(counts) <= wanted, f"pods of no known session: {counts}"


def assert_truthful_recording(sessions: Sessions, name: str) -> None:
    """Phase Recording, and the RecorderRunning condition agrees with the pod that runs."""
    status = sessions.status(name)
    assert status.get("phase") == "Recording", status
    running = sessions.condition(name, "RecorderRunning")
    assert running and running["status"] == "True", status
    pod = sessions.pods(name)[0]["metadata"]["name"]
    assert pod in running["message"], running


def secrets_of(stack: Stack) -> dict[str, str]:
    """The values that must never reach a log: the RDP password and the MinIO secret key."""
    return {"desktop password": stack.desktop.password,
            "MinIO secret key": stack.minio.secret_key}


def assert_no_secret_in_logs(stack: Stack, with_operator: bool = True) -> None:
    """Every log the stack collected (the operator's and the pods' included) is clean."""
    leaks = []
    logs = stack.logs()
    if with_operator:  # the operator keeps its log with the stack's: make sure it was read
        assert any("operator" in name for name in logs), f"no operator log among {list(logs)}"
    for name, path in logs.items():
        text = path.read_text(errors="replace")
        leaks += [f"{what} in {name}" for what, value in secrets_of(stack).items()
                  if value in text]
    assert leaks == []


def wait_gone(sessions: Sessions, timeout: float) -> None:
    """No RecordingSession and no pod left in the namespace."""
    custom = client.CustomObjectsApi(sessions.api)

    def empty() -> bool:
        left = custom.list_namespaced_custom_object(
            GROUP, VERSION, sessions.namespace, PLURAL)["items"]
        return not left and not sessions.core.list_namespaced_pod(sessions.namespace).items

    wait_for(empty, timeout, f"every session and pod in {sessions.namespace} to be gone")


def wait_recording(sessions: Sessions, names: Iterable[str], timeout: float,
                   on_poll: Callable[[], None] | None = None) -> None:
    """Wait for every session to be Recording; fail naming those that never got there."""
    wanted = list(names)
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        waiting = [n for n in wanted if sessions.status(n).get("phase") != "Recording"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for Recording; "
                                 f"not yet: {[(n, sessions.status(n)) for n in waiting]}")
        time.sleep(0.5)


def stop_and_verify(sessions: Sessions, manifest: dict[str, Any],
                    private_key: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Stop through the spec, wait for Completed, and verify the recording from MinIO.

    Asserts the invariant "no acknowledged chunk is lost": verify is ok and complete and
    holds every chunk the status counted as stored before the stop. It reads MinIO
    directly, never through a test's fault relay. Returns the final status, verify's
    report and the source arguments for a later `lucid-seal decrypt`.
    """
    stack = sessions.stack
    name, bucket = manifest["metadata"]["name"], manifest["spec"]["storage"]["bucket"]
    acknowledged = _chunks_stored(sessions, name)
    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    status = sessions.wait_phase(name, "Completed", timeout=90)
    assert status["pipeline"]["state"] == "Finalized", status
    running = sessions.condition(name, "RecorderRunning")
    assert running and running["status"] == "False", status
    source = ["--endpoint", stack.minio.endpoint, "--bucket", bucket, "--no-tls",
              "--session", f"{sessions.namespace}/{name}", "--private-key", str(private_key)]
    report = _cli(stack, "lucid-seal", "verify", "--json", *source)
    assert report.returncode == 0, report.stdout + report.stderr
    result = json.loads(report.stdout)
    assert result["ok"] is True and result["complete"] is True, result
    assert result["chunksAuthentic"] == result["chunksExpected"] >= acknowledged, result
    return status, result, source
