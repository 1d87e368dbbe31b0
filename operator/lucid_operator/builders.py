"""Pure builders: the child objects of a RecordingSession, from its spec and the settings.

Names are deterministic, so creating a child twice (a handler re-run, or an
operator restarted mid-way) finds the first one instead of making another.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lucid_common import contract
from lucid_common.api import (
    API_VERSION,
    AUDIT_LABELS,
    GROUP,
    KIND,
    PLURAL,
    RecordingSessionSpec,
    StorageCredentialsRef,
)
from lucid_operator.quantity import quantity_bytes
from lucid_operator.settings import OperatorSettings
from lucid_operator.spool_budget import spool_bound

MANAGED_BY = "lucid-operator"
LABEL_SESSION = f"{GROUP}/session"
LABEL_SESSION_UID = f"{GROUP}/session-uid"
LABEL_COMPONENT = "app.kubernetes.io/component"
RECORDER_CONTAINER = "recorder"


@dataclass(frozen=True)
class SessionRef:
    """The identity of the owning RecordingSession."""

    namespace: str
    name: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_name(session_name: str, suffix: str) -> str:
    """`<session>-<suffix>`, shortened with a hash when it would exceed 63 characters."""
    name = f"{session_name}-{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(session_name.encode()).hexdigest()[:8]
    keep = 63 - len(suffix) - len(digest) - 2
    return f"{session_name[:keep].rstrip('-.')}-{digest}-{suffix}"


def recorder_name(ref: SessionRef) -> str:
    return child_name(ref.name, "recorder")


def labels(ref: SessionRef) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "lucid-recorder",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_COMPONENT: "recorder",
        LABEL_SESSION: ref.name[:63].rstrip("-."),
        LABEL_SESSION_UID: ref.uid,
    }


def audit_labels(spec: RecordingSessionSpec) -> dict[str, str | None]:
    """The labels that mirror spec.audit: its value, or None where the field is unset.

    The models restrict project and environment to label values, so copying cannot fail.
    """
    audit = spec.audit
    return {label: getattr(audit, field) if audit is not None else None
            for field, label in AUDIT_LABELS.items()}


def label_patch(current: dict[str, str], wanted: dict[str, str | None]) -> dict[str, str | None]:
    """The merge patch of metadata.labels that makes `current` agree with `wanted`.

    None removes a label; labels not in `wanted` are someone else's and stay as they are.
    """
    return {key: value for key, value in wanted.items() if current.get(key) != value}


def _metadata(ref: SessionRef) -> dict[str, Any]:
    return {
        "name": recorder_name(ref),
        "namespace": ref.namespace,
        "labels": labels(ref),
        "ownerReferences": [ref.owner_reference()],
    }


def service_account(ref: SessionRef) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(ref)}


def role(ref: SessionRef) -> dict[str, Any]:
    """May read this one session and patch its status: nothing else, no other session."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(ref),
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL],
             "resourceNames": [ref.name], "verbs": ["get"]},
            {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"],
             "resourceNames": [ref.name], "verbs": ["get", "patch"]},
        ],
    }


def role_binding(ref: SessionRef) -> dict[str, Any]:
    name = recorder_name(ref)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(ref),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ref.namespace}],
    }


def _secret_env(env_name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _secret_volume(volume: str, secret: str,
                   keys: str | list[tuple[str, str]]) -> dict[str, Any]:
    """A Secret volume of only the named keys ((key, file name) pairs, or one key as itself)."""
    # Only these keys are projected: the pod never sees the rest of the Secret.
    pairs = [(keys, keys)] if isinstance(keys, str) else keys
    return {"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440,
                                       "items": [{"key": k, "path": p} for k, p in pairs]}}


def storage_credentials_ref(ref: SessionRef, spec: RecordingSessionSpec,
                            settings: OperatorSettings) -> StorageCredentialsRef:
    """The Secret whose storage keys the recorder pod gets: with scoped credentials the
    per-session one the operator fills from STS (sts.py), so the long-lived key in
    storage.credentialsSecretRef never reaches the pod; otherwise that Secret itself."""
    if settings.storage_scoped_credentials:
        return StorageCredentialsRef(name=session_credentials_secret(ref.name),
                                     access_key_key=contract.STORAGE_ACCESS_KEY_FILE,
                                     secret_key_key=contract.STORAGE_SECRET_KEY_FILE)
    return spec.storage.credentials_secret_ref


def session_credentials_secret(session_name: str) -> str:
    """Name of the per-session Secret with the scoped STS keys."""
    return f"{session_name}-storage-session"


def _resources(spec: RecordingSessionSpec, settings: OperatorSettings) -> dict[str, Any]:
    resources: dict[str, dict[str, str]] = {
        "requests": {"cpu": settings.recorder_cpu_request,
                     "memory": settings.recorder_memory_request},
        "limits": {"cpu": settings.recorder_cpu_limit, "memory": settings.recorder_memory_limit},
    }
    if settings.recorder_ephemeral_storage_request:
        resources["requests"]["ephemeral-storage"] = settings.recorder_ephemeral_storage_request
    if settings.recorder_ephemeral_storage_limit:
        resources["limits"]["ephemeral-storage"] = settings.recorder_ephemeral_storage_limit
    override = spec.recorder_pod.resources
    if override is not None:
        for section in ("requests", "limits"):
            values = getattr(override, section)
            if values is not None:
                resources[section].update(values.model_dump(by_alias=True, exclude_none=True))
    return resources


def resume_configmap_name(pod_name: str) -> str:
    """One per pod (a ConfigMap name may be 253 characters): each pod keeps the resume
    point it started from, and no later one can change it under a running pod."""
    return f"{pod_name}-resume"


def resume_configmap(ref: SessionRef, pod_name: str, data: bytes) -> dict[str, Any]:
    """The operator's resume point for one recorder pod (lucid_common.resume), immutable,
    garbage-collected with the session."""
    metadata = _metadata(ref)
    metadata["name"] = resume_configmap_name(pod_name)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "immutable": True,
            "binaryData": {contract.RESUME_FILE: base64.b64encode(data).decode()}}


def recorder_pod(ref: SessionRef, spec: RecordingSessionSpec,
                 settings: OperatorSettings, resume_from: str | None = None
                 ) -> dict[str, Any]:
    """The recorder pod. Credentials reach it only through secretKeyRef and Secret volumes.

    The storage keys come in a Secret volume the kubelet keeps current, so a rotated
    Secret reaches a running recorder; the RDP login is needed only to connect.
    `resume_from` names the ConfigMap with the operator's resume point, for recorders
    whose keys may not read the store.
    """
    target, storage = spec.target, spec.storage
    store_ref = storage_credentials_ref(ref, spec, settings)
    env: list[dict[str, Any]] = [
        {"name": contract.ENV_SESSION_NAME, "value": ref.name},
        {"name": contract.ENV_SESSION_NAMESPACE, "value": ref.namespace},
        {"name": contract.ENV_SESSION_UID, "value": ref.uid},
        {"name": contract.ENV_SESSION_SPEC,
         "value": json.dumps(spec.to_k8s(), sort_keys=True, separators=(",", ":"))},
        {"name": contract.ENV_METRICS_PORT, "value": str(settings.recorder_metrics_port)},
        # The recorder pushes back (SpoolFull, Degraded) at this bound, safely before the
        # kubelet would evict the pod for outgrowing the volume's sizeLimit.
        {"name": contract.ENV_SPOOL_MAX_BYTES,
         "value": str(spool_bound(quantity_bytes(settings.spool_size_limit)))},
        {"name": contract.ENV_TERMINATION_GRACE_SECONDS,
         "value": str(settings.termination_grace_seconds)},
        {"name": contract.ENV_STORAGE_AUTH_WAIT_SECONDS,
         "value": str(settings.storage_auth_wait_seconds)},
        _secret_env(contract.ENV_RDP_USERNAME, target.credentials_secret_ref.name,
                    target.credentials_secret_ref.username_key),
        _secret_env(contract.ENV_RDP_PASSWORD, target.credentials_secret_ref.name,
                    target.credentials_secret_ref.password_key),
    ]
    recipient = spec.encryption.recipient_public_key_secret_ref
    credential_files = [(store_ref.access_key_key, contract.STORAGE_ACCESS_KEY_FILE),
                        (store_ref.secret_key_key, contract.STORAGE_SECRET_KEY_FILE)]
    if settings.storage_scoped_credentials:
        # Temporary STS keys come with their session token (the operator renews all three).
        credential_files.append((contract.STORAGE_SESSION_TOKEN_FILE,
                                 contract.STORAGE_SESSION_TOKEN_FILE))
    volumes: list[dict[str, Any]] = [
        {"name": "spool", "emptyDir": {"sizeLimit": settings.spool_size_limit}},
        _secret_volume("recipient", recipient.name, recipient.key),
        # A volume, not env vars: the kubelet updates it when the Secret is rotated or
        # renewed, and the recorder re-reads it (an env var is fixed for the container's life).
        _secret_volume("storage-credentials", store_ref.name, credential_files),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "spool", "mountPath": contract.SPOOL_DIR},
        {"name": "recipient", "mountPath": contract.RECIPIENT_KEY_DIR, "readOnly": True},
        {"name": "storage-credentials", "mountPath": contract.STORAGE_CREDENTIALS_DIR,
         "readOnly": True},
    ]
    if resume_from is not None:
        volumes.append({"name": "resume", "configMap": {"name": resume_from,
                                                        "defaultMode": 0o444}})
        mounts.append({"name": "resume", "mountPath": contract.RESUME_DIR, "readOnly": True})
        env.append({"name": contract.ENV_RESUME_DIR, "value": contract.RESUME_DIR})
    if target.tls.ca_secret_ref is not None:
        ca = target.tls.ca_secret_ref
        volumes.append(_secret_volume("rdp-ca", ca.name, ca.key))
        mounts.append({"name": "rdp-ca", "mountPath": contract.RDP_CA_DIR, "readOnly": True})
    if storage.tls.ca_secret_ref is not None:
        ca = storage.tls.ca_secret_ref
        volumes.append(_secret_volume("storage-ca", ca.name, ca.key))
        mounts.append({"name": "storage-ca", "mountPath": contract.STORAGE_CA_DIR,
                       "readOnly": True})

    uid = settings.recorder_uid
    pod_spec: dict[str, Any] = {
        "serviceAccountName": recorder_name(ref),
        # A crashed recorder restarts in place, so it finds its spool (an emptyDir
        # lives as long as the pod) and uploads what it had sealed.
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": RECORDER_CONTAINER,
            "image": settings.recorder_image,
            "command": list(settings.recorder_command),
            "env": env,
            "volumeMounts": mounts,
            "resources": _resources(spec, settings),
            "terminationMessagePolicy": "FallbackToLogsOnError",
            **_probes(settings.recorder_metrics_port),
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }],
        "volumes": volumes,
    }
    if spec.recorder_pod.node_selector:
        pod_spec["nodeSelector"] = dict(spec.recorder_pod.node_selector)
    if spec.recorder_pod.tolerations:
        pod_spec["tolerations"] = [t.to_k8s() for t in spec.recorder_pod.tolerations]
    metadata = _metadata(ref)
    metadata["labels"].update({k: v for k, v in audit_labels(spec).items() if v is not None})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def _probes(port: int) -> dict[str, Any]:
    if not port:
        return {}
    return {
        "ports": [{"name": "metrics", "containerPort": port}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": port},
                          "periodSeconds": 10, "failureThreshold": 6},
    }


def required_secret_keys(spec: RecordingSessionSpec) -> dict[str, set[str]]:
    """Every Secret the session references, with the keys each must hold."""
    wanted: dict[str, set[str]] = {}

    def need(secret: str, key: str) -> None:
        wanted.setdefault(secret, set()).add(key)

    creds = spec.target.credentials_secret_ref
    need(creds.name, creds.username_key)
    need(creds.name, creds.password_key)
    store = spec.storage.credentials_secret_ref
    need(store.name, store.access_key_key)
    need(store.name, store.secret_key_key)
    recipient = spec.encryption.recipient_public_key_secret_ref
    need(recipient.name, recipient.key)
    for ca in (spec.target.tls.ca_secret_ref, spec.storage.tls.ca_secret_ref):
        if ca is not None:
            need(ca.name, ca.key)
    return wanted
