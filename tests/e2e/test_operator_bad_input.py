"""Bad input: the API server rejects invalid sessions readably; the operator reports, retries."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from lucid_devstack.proc import free_port
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


def _apply_error(sessions: Sessions, manifest: dict) -> str:
    done = sessions.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest),
                                  check=False)
    assert done.returncode != 0, f"apply should have failed: {done.stdout}"
    return done.stderr


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda s: s["target"].update(port=70000),
     "spec.target.port: Invalid value: 70000: spec.target.port in body should be less than "
     "or equal to 65535"),
    (lambda s: s.pop("storage"), "spec.storage: Required value"),
    (lambda s: s.update(state="Paused"), 'spec.state: Unsupported value: "Paused"'),
    (lambda s: s["target"].update(tls={"mode": "Insecure"}),
     "mode Insecure requires insecureSkipVerify: true as an explicit opt-in"),
    (lambda s: s["target"].update(tls={"mode": "Fingerprint"}),
     "fingerprintSha256 is required when mode is Fingerprint"),
    (lambda s: s["storage"].update(bucket="Not_A_Bucket"), "spec.storage.bucket"),
    (lambda s: s["compression"].update(level=99) if "compression" in s
     else s.update(compression={"level": 99}),
     "spec.compression.level: Invalid value: 99"),
])
def test_schema_violations_are_rejected_readably(sessions: Sessions, mutate, expected):
    manifest = sessions.manifest("bad")
    mutate(manifest["spec"])
    assert expected in _apply_error(sessions, manifest)
    assert sessions.get("bad") is None


def test_stopped_session_cannot_restart(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("once", state="Stopped"))
    sessions.wait_phase("once", "Completed")
    error = _apply_error(sessions, sessions.manifest("once", state="Recording"))
    assert "a Stopped session cannot be restarted: create a new RecordingSession" in error


def test_target_is_immutable(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("fixed", state="Stopped"))
    moved = sessions.manifest("fixed", state="Stopped")
    moved["spec"]["target"]["port"] = 3390
    assert "target is immutable" in _apply_error(sessions, moved)


def test_missing_secret_is_reported_then_recovers(operator, sessions: Sessions):
    manifest = sessions.manifest("needs-key")
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "later-key"
    sessions.apply(manifest)
    status = sessions.wait_phase("needs-key", "Pending")
    refs = wait_for(lambda: sessions.condition("needs-key", "ReferencesResolved"), 30,
                    "ReferencesResolved condition")
    assert refs["status"] == "False" and refs["reason"] == "SecretNotFound"
    assert 'Secret "later-key" not found' in refs["message"]
    ready = sessions.condition("needs-key", "Ready")
    assert ready["status"] == "False" and "retrying in" in ready["message"]
    assert sessions.pods("needs-key") == []
    assert status["observedGeneration"] == 1
    sessions.secret("later-key", {"publicKey": "key material arrives late"})
    sessions.wait_phase("needs-key", "Recording", timeout=60)
    assert sessions.condition("needs-key", "ReferencesResolved")["status"] == "True"


def test_missing_key_names_the_key(operator, sessions: Sessions):
    sessions.secret("half-login", {"username": "someone"})
    manifest = sessions.manifest("half")
    manifest["spec"]["target"]["credentialsSecretRef"]["name"] = "half-login"
    sessions.apply(manifest)
    refs = wait_for(lambda: (c := sessions.condition("half", "ReferencesResolved"))
                    and c["status"] == "False" and c, 30, "ReferencesResolved=False")
    assert refs["reason"] == "SecretKeyMissing"
    assert "Secret \"half-login\" has no key 'password'" in refs["message"]
    assert "someone" not in str(sessions.get("half"))  # never a value, only key names


def test_unreachable_target_is_reported_and_retried_with_backoff(operator, sessions: Sessions):
    manifest = copy.deepcopy(sessions.manifest("nowhere"))
    manifest["spec"]["target"]["port"] = free_port()  # nothing listens there
    sessions.apply(manifest)
    reach = wait_for(lambda: (c := sessions.condition("nowhere", "TargetReachable"))
                     and c["status"] == "False" and c, 30, "TargetReachable=False")
    assert reach["reason"] == "ConnectFailed"
    assert "cannot connect to 127.0.0.1:" in reach["message"]
    assert sessions.status("nowhere")["phase"] == "Pending"
    # Backoff, not a tight loop: the Ready message names a delay that doubles
    # (1, 2, 4 s with this operator's settings) while the target stays down.
    seen: set[float] = set()

    def delays_grew() -> bool:
        message = sessions.condition("nowhere", "Ready")["message"]
        seen.add(float(re.search(r"retrying in ([0-9.]+)s", message).group(1)))
        return {1.0, 2.0, 4.0} <= seen

    wait_for(delays_grew, 60, "retry delays 1s, 2s and 4s", interval=0.2)
    assert sessions.pods("nowhere") == []
