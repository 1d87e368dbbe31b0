"""A session whose recorder records nothing says so (issue 16 items 2 and 11).

The real recorder against the real xrdp desktop, through kubectl. A wrong password
in the RDP Secret: xrdp completes the RDP connection anyway and shows only its own
log window, so the recorder must notice that the session's screen never comes
(NoScreenUpdates). An idle desktop whose clock is stopped must not be mistaken for
that: its first full frame arrived. The recorder's metrics are read from its pod.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.proc import free_port
from lucid_devstack.stack import Stack
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

SCREEN_TIMEOUT = 10


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def health_operator(stack: Stack, crd: None, metrics_port: int) -> Iterator[OperatorProcess]:
    # One recorder at a time in this module, so one fixed metrics port on the host network.
    running = OperatorProcess(stack, settings={
        "LUCID_RECORDER_METRICS_PORT": str(metrics_port),
        "LUCID_TERMINATION_GRACE_SECONDS": "15",
        "LUCID_DELETE_TIMEOUT_SECONDS": "60",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
    }).start()
    yield running
    running.stop()


def _recorder_metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("lucid_recorder_") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _session(sessions: Sessions, name: str, secret: str, keys_dir: Path) -> None:
    keys = keygen(keys_dir)
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, recording={"screenTimeoutSeconds": SCREEN_TIMEOUT})
    manifest["spec"]["target"]["credentialsSecretRef"]["name"] = secret
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["storage"]["bucket"] = "e2e-health"
    sessions.apply(manifest)


def _delete(sessions: Sessions, name: str) -> None:
    sessions.stack.kubectl("delete", "rsess", name, "-n", sessions.namespace, "--wait=true",
                           timeout=120)
    wait_for(lambda: sessions.pods(name) == [], 60, f"the pods of {name} to be gone")


def _show(sessions: Sessions, *args: str) -> str:
    """kubectl output as a user sees it, printed for the record (pytest -s)."""
    out = sessions.stack.kubectl(*args, "-n", sessions.namespace).stdout
    print(f"\n$ kubectl {' '.join(args)}\n{out}")
    return out


def test_a_wrong_rdp_password_is_degraded_no_screen_updates_and_not_ready(
        health_operator, sessions: Sessions, metrics_port: int, tmp_path: Path):
    desktop = sessions.stack.desktop
    wrong = "".join("b" if c == "a" else "a" for c in desktop.password)  # all 8 differ
    sessions.secret("rdp-wrong", {"username": desktop.username, "password": wrong})
    _session(sessions, "wrong-password", "rdp-wrong", tmp_path)
    sessions.wait_phase("wrong-password", "Recording", timeout=90)
    connected_at = time.monotonic()

    def degraded() -> dict | None:
        condition = sessions.condition("wrong-password", "Degraded")
        return condition if condition and condition["status"] == "True" else None

    condition = wait_for(degraded, SCREEN_TIMEOUT + 40, "Degraded=True")
    took = time.monotonic() - connected_at
    assert condition["reason"] == "NoScreenUpdates", condition
    assert "of connecting to 127.0.0.1:" in condition["message"], condition
    assert "check Secret rdp-wrong" in condition["message"], condition
    assert took >= SCREEN_TIMEOUT - 2, f"Degraded after {took:.1f}s, before the timeout"
    ready = wait_for(lambda: (c := sessions.condition("wrong-password", "Ready"))
                     and c["reason"] == "NoScreenUpdates" and c, 30, "Ready=False")
    assert ready["status"] == "False"
    status = sessions.status("wrong-password")
    assert status["phase"] == "Recording"  # it is connected and records what it gets
    assert status["pipeline"]["screen"] == "Missing"
    events = [e for e in sessions.events("wrong-password") if e["reason"] == "NoScreenUpdates"]
    assert [e["type"] for e in events] == ["Warning"], events
    assert wrong not in str(sessions.get("wrong-password"))

    metrics = _recorder_metrics(metrics_port)
    assert metrics["lucid_recorder_rdp_connected"] == 1.0
    assert metrics["lucid_recorder_screen_shown"] == 0.0
    assert "lucid_recorder_upload_lag_seconds" in metrics
    for stage in ("capture", "compress", "encrypt", "store"):
        assert f'lucid_recorder_errors_total{{stage="{stage}"}}' in metrics
    for operation in ("upload", "manifest", "rdp_connect", "storage_credentials"):
        assert f'lucid_recorder_retries_total{{operation="{operation}"}}' in metrics
    print("\n" + "\n".join(f"{k} {v}" for k, v in sorted(metrics.items())
                           if "rdp_connected" in k or "screen_shown" in k or "lag" in k
                           or "errors_total" in k or "retries_total" in k))
    _show(sessions, "get", "rsess", "wrong-password")
    described = _show(sessions, "describe", "rsess", "wrong-password")
    assert "NoScreenUpdates" in described
    _delete(sessions, "wrong-password")


def test_an_idle_desktop_without_a_clock_stays_ready(
        health_operator, sessions: Sessions, metrics_port: int, tmp_path: Path):
    desktop = sessions.stack.desktop
    clock = desktop.process_groups()["xclock"]
    os.killpg(clock, signal.SIGSTOP)  # nothing on the screen changes any more
    try:
        _session(sessions, "idle", "rdp-login", tmp_path)
        sessions.wait_phase("idle", "Recording", timeout=90)
        ready = wait_for(lambda: (c := sessions.condition("idle", "Ready"))
                         and c["status"] == "True" and c, 30, "Ready=True")
        assert ready["reason"] == "Recording"
        time.sleep(SCREEN_TIMEOUT + 5)  # well past the timeout, with no update at all
        status = sessions.status("idle")
        assert status["pipeline"]["screen"] == "Shown", status["pipeline"]
        assert sessions.condition("idle", "Ready")["status"] == "True"
        degraded = sessions.condition("idle", "Degraded")
        assert degraded is None or degraded["status"] == "False", degraded
        metrics = _recorder_metrics(metrics_port)
        assert metrics["lucid_recorder_rdp_connected"] == 1.0
        assert metrics["lucid_recorder_screen_shown"] == 1.0
        print(f"\nidle desktop after {SCREEN_TIMEOUT + 5}s: "
              f"updatesCaptured {status['pipeline']['updatesCaptured']}")
        _show(sessions, "get", "rsess", "idle")
    finally:
        os.killpg(clock, signal.SIGCONT)
    _delete(sessions, "idle")
