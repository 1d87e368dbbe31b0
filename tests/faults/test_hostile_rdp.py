"""A RecordingSession whose target is a hostile RDP peer (real operator, real recorder pod).

The peer (tests/rdp_peer.py) listens on loopback, where the local kubelet's
pods run too. The session must end Failed with a readable reason that names
what the peer did and carries no credential, without the pod hanging or
crash-looping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for
from tests.faults.support import assert_no_secret_in_logs, secrets_of
from tests.rdp_peer import Peer, ThreadedPeer, self_signed

pytestmark = pytest.mark.stack

# Five connection attempts with 1 + 2 + 4 + 8 s between them, each failing
# within the recorder's default step timeout, then the operator's update.
FAILED_WITHIN = 180


def _hostile_session(sessions: Sessions, name: str, port: int, tls: dict[str, object],
                     keys_dir: Path) -> None:
    """A session as the real-recorder e2e tests make one, its target the peer."""
    keys = keygen(keys_dir)
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name)
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["target"].update(port=port, tls=tls)
    sessions.apply(manifest)


def _assert_failed_clearly(sessions: Sessions, name: str, pattern: str) -> dict[str, object]:
    status = sessions.wait_phase(name, "Failed", timeout=FAILED_WITHIN)
    running = sessions.condition(name, "RecorderRunning")
    assert running is not None and running["reason"] == "RecorderFailed", status
    message = running["message"]
    assert message.startswith("recorder cannot continue: capture failed: "), message
    assert pattern in message, message
    assert "\n" not in message and len(message) < 600, message
    assert status["pipeline"]["state"] == "Failed", status
    everything = json.dumps(sessions.get(name))
    for what, secret in secrets_of(sessions.stack).items():
        assert secret not in everything, f"{what} in the session"
    # Failed at once (the recorder gave up itself), not through crash-loop retries.
    assert status.get("retries", 0) == 0, status
    wait_for(lambda: sessions.pods(name) == [], 60, "the recorder pod to be removed")
    # The recorder's error path logs what the peer sent: never what the client sent it.
    assert_no_secret_in_logs(sessions.stack)
    return status


def test_garbage_after_tls_fails_the_session_clearly(
        recorder_operator, sessions: Sessions, tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "peer")
    peer = Peer(cert, "mcs", "garbage", seed=5, garbage_size=4096)
    with ThreadedPeer(peer) as served:
        _hostile_session(sessions, "hostile-garbage", served.port,
                         {"mode": "Fingerprint", "fingerprintSha256": cert.sha256},
                         tmp_path / "keys")
        _assert_failed_clearly(sessions, "hostile-garbage",
                               "MCS Connect: undecodable data from the server")
    # The recorder retried (ProtocolError may be a passing fault) but then stopped.
    assert peer.reached.count("mcs") >= 2


def test_self_signed_certificate_under_verify_fails_the_session_clearly(
        recorder_operator, sessions: Sessions, tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "peer")
    peer = Peer(cert)  # honest, but its certificate chains to no trusted CA
    with ThreadedPeer(peer) as served:
        _hostile_session(sessions, "hostile-cert", served.port, {"mode": "Verify"},
                         tmp_path / "keys")
        _assert_failed_clearly(sessions, "hostile-cert",
                               "server certificate failed Verify verification")
    # A certificate does not fix itself: one attempt, and nothing sent after TLS.
    assert peer.reached == ["x224", "tls"]
