"""Thin Kubernetes I/O for the operator: every call has a timeout, nothing else lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lucid_common.api import GROUP, PLURAL, VERSION

# (connect, read) seconds for every API call.
TIMEOUT = (5.0, 30.0)


def load_config() -> None:
    """In a pod use the service account; elsewhere the usual kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data (base64 values), or None when it does not exist."""
        secret = _unless_missing(lambda: self.core.read_namespaced_secret(
            name, namespace, _request_timeout=TIMEOUT))
        return None if secret is None else dict(secret.data or {})

    def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> bool:
        """Create an Opaque Secret (base64 values); False when one of that name exists."""
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace}, "data": data}
        try:
            self.core.create_namespaced_secret(namespace, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def apply_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create the ConfigMap, or make its data `data` (a merge patch)."""
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace}, "data": data}
        try:
            self.core.create_namespaced_config_map(namespace, body, _request_timeout=TIMEOUT)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.core.patch_namespaced_config_map(name, namespace, {"data": data},
                                              _request_timeout=TIMEOUT)
    def create_configmap(self, manifest: dict[str, Any]) -> bool:
        """Create the ConfigMap; False (and no change) when one of that name exists."""
        namespace = manifest["metadata"]["namespace"]
        try:
            self.core.create_namespaced_config_map(namespace, manifest,
                                                   _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def read_secret_object(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The whole Secret (metadata too), or None when it does not exist."""
        secret = _unless_missing(lambda: self.core.read_namespaced_secret(
            name, namespace, _request_timeout=TIMEOUT))
        return None if secret is None else self.api.sanitize_for_serialization(secret)

    def put_secret(self, manifest: dict[str, Any]) -> bool:
        """Create the Secret, or replace the one of that name. True when it was created."""
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        try:
            self.core.create_namespaced_secret(namespace, manifest, _request_timeout=TIMEOUT)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.core.replace_namespaced_secret(name, namespace, manifest, _request_timeout=TIMEOUT)
        return False

    def ensure(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the object, or adopt the existing one of that name. Returns (object, created).

        Creating by a deterministic name is what keeps a re-run handler (or an
        operator restarted mid-way) from making a second pod.
        """
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        create, read = {
            "Pod": (self.core.create_namespaced_pod, self.core.read_namespaced_pod),
            "ServiceAccount": (self.core.create_namespaced_service_account,
                               self.core.read_namespaced_service_account),
            "Role": (self.rbac.create_namespaced_role, self.rbac.read_namespaced_role),
            "RoleBinding": (self.rbac.create_namespaced_role_binding,
                            self.rbac.read_namespaced_role_binding),
        }[kind]
        try:
            created = create(namespace, manifest, _request_timeout=TIMEOUT)
            return self.api.sanitize_for_serialization(created), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = read(name, namespace, _request_timeout=TIMEOUT)
        return self.api.sanitize_for_serialization(existing), False

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        pod = _unless_missing(lambda: self.core.read_namespaced_pod(
            name, namespace, _request_timeout=TIMEOUT))
        return None if pod is None else self.api.sanitize_for_serialization(pod)

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        listed = self.core.list_namespaced_pod(namespace, label_selector=label_selector,
                                               _request_timeout=TIMEOUT)
        return [self.api.sanitize_for_serialization(pod) for pod in listed.items]

    def patch_pod_labels(self, namespace: str, name: str, uid: str,
                         labels: dict[str, str | None]) -> bool:
        """Set (None: remove) labels of that pod UID; False when it is gone or replaced."""
        body = {"metadata": {"uid": uid, "labels": labels}}
        return _unless_gone(lambda: self.core.patch_namespaced_pod(
            name, namespace, body, _request_timeout=TIMEOUT))

    def patch_session_labels(self, namespace: str, name: str, uid: str,
                             labels: dict[str, str | None]) -> bool:
        """Set (None: remove) labels of that session UID; False when it is gone or replaced."""
        body = {"metadata": {"uid": uid, "labels": labels}}
        return _unless_gone(lambda: self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, body, _request_timeout=TIMEOUT))

    def delete_pod(self, namespace: str, name: str, grace_seconds: int,
                   uid: str | None = None) -> bool:
        """Graceful delete (SIGTERM, then SIGKILL after the grace). False if already gone."""
        body = client.V1DeleteOptions(
            grace_period_seconds=grace_seconds,
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
        )
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def update_session_status(
        self, namespace: str, name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        attempts: int = 8,
    ) -> dict[str, Any] | None:
        """Read the session, let `mutate` compute a status merge patch, write it.

        The write carries the resourceVersion it was computed from, so a
        concurrent writer (the recorder, or another handler) makes it fail with
        409 and it is recomputed instead of clobbering. Returns the new object,
        or None when the session is gone.
        """
        for _ in range(attempts):
            session = self.read_session(namespace, name)
            if session is None:
                return None
            patch = mutate(session)
            if not patch:
                return session
            body = {"metadata": {"resourceVersion": session["metadata"]["resourceVersion"]},
                    "status": patch}
            try:
                return self.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                    GROUP, VERSION, namespace, PLURAL, name, body, _request_timeout=TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409:
                    raise
        raise RuntimeError(f"status of {namespace}/{name} kept changing; gave up after "
                           f"{attempts} attempts")

    def read_session(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _unless_missing(lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT))


T = TypeVar("T")


def _unless_missing(read: Callable[[], T]) -> T | None:
    """The object, or None when the API says it does not exist (404)."""
    try:
        return read()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _unless_gone(patch: Callable[[], object]) -> bool:
    """True once patched; False when the object is gone, or its name now has another UID.

    A patch carrying metadata.uid is refused for an object of another UID with 422
    "metadata.uid: ... field is immutable": a precondition, not a bad patch.
    """
    try:
        patch()
    except ApiException as exc:
        if exc.status == 404 or (exc.status == 422 and "metadata.uid" in (exc.body or "")):
            return False
        raise
    return True
