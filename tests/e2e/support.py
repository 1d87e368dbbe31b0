"""Helpers for end-to-end tests: waiting, and sessions with their Secrets."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lucid_common.api import GROUP, PLURAL, VERSION
from lucid_devstack.stack import Stack

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.5) -> T:
    """Poll until `probe` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


class Sessions:
    """Creates sessions and their Secrets in one namespace, reads them back."""

    def __init__(self, stack: Stack, api: client.ApiClient, namespace: str) -> None:
        self.stack = stack
        self.api = api
        self.namespace = namespace
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def secret(self, name: str, data: dict[str, str]) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        self.core.create_namespaced_secret(self.namespace, body)

    def standard_secrets(self) -> None:
        desktop, minio = self.stack.desktop, self.stack.minio
        self.secret("rdp-login", {"username": desktop.username, "password": desktop.password})
        self.secret("minio-creds", {"accessKey": minio.access_key, "secretKey": minio.secret_key})
        self.secret("auditor-key", {"publicKey": "placeholder public key"})

    def manifest(self, name: str, **spec_overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "target": {"host": "127.0.0.1", "port": self.stack.desktop.rdp_port,
                       "credentialsSecretRef": {"name": "rdp-login"},
                       "tls": {"mode": "Fingerprint",
                               "fingerprintSha256": self.stack.desktop.tls_fingerprint_sha256}},
            "storage": {"endpoint": self.stack.minio.endpoint, "bucket": "recordings",
                        "credentialsSecretRef": {"name": "minio-creds"},
                        "tls": {"enabled": False}},
            "encryption": {"recipientPublicKeySecretRef": {"name": "auditor-key"}},
            "retry": {"maxRetries": 1, "backoffSeconds": 1, "maxBackoffSeconds": 2},
        }
        spec.update(spec_overrides)
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RecordingSession",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}

    def apply(self, manifest: dict[str, Any]) -> str:
        return self.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest)).stdout

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == kind),
                    None)

    def wait_phase(self, name: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(lambda: self.status(name) if self.status(name).get("phase") == phase
                        else None, timeout, f"{self.namespace}/{name} phase {phase}")

    def pods(self, name: str) -> list[dict[str, Any]]:
        listed = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"lucid.dev/session={name}")
        return [self.api.sanitize_for_serialization(p) for p in listed.items]

    def events(self, name: str) -> list[dict[str, Any]]:
        listed = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}")
        return [self.api.sanitize_for_serialization(e) for e in listed.items]


def has_default_sa(api: client.ApiClient, namespace: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_service_account("default", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
