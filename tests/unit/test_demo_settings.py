"""`make demo`'s operator settings: recorders on one host network must not share a port."""

from __future__ import annotations

import pytest

from lucid_common import contract
from lucid_common.api import RecordingSessionSpec
from lucid_devstack import demo
from lucid_operator import builders
from lucid_operator.builders import SessionRef
from lucid_operator.settings import OperatorSettings

SPEC = {
    "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "rdp-login"},
               "tls": {"mode": "Fingerprint", "fingerprintSha256": "ab" * 32}},
    "storage": {"endpoint": "127.0.0.1:9000", "bucket": "recordings",
                "credentialsSecretRef": {"name": "minio-creds"}},
    "encryption": {"recipientPublicKeySecretRef": {"name": "auditor-public-key"}},
}


def _bound_ports(pod: dict) -> set[int]:
    """Ports the recorder in this pod would listen on (0 means it listens on none)."""
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {int(env[contract.ENV_METRICS_PORT])}
    ports |= {p["containerPort"] for p in container.get("ports", [])}
    return ports - {0}


def test_demo_recorders_bind_no_shared_port(monkeypatch: pytest.MonkeyPatch):
    for name in OperatorSettings.model_fields:
        monkeypatch.delenv(f"LUCID_{name.upper()}", raising=False)
    for name, value in demo.operator_settings().items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    spec = RecordingSessionSpec.model_validate(SPEC)
    pods = [builders.recorder_pod(SessionRef("lucid-demo", name, f"uid-{name}"), spec, settings)
            for name in ("demo", "demo-second", "demo-third")]
    bound = [_bound_ports(pod) for pod in pods]
    every = [port for ports in bound for port in ports]
    assert len(every) == len(set(every)), f"recorders would share a port: {bound}"
    # With port 0 no liveness probe can hit a neighbour's /healthz either.
    assert all("livenessProbe" not in pod["spec"]["containers"][0] for pod in pods)
