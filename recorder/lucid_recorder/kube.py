"""The recorder's own in-cluster Kubernetes client: the two calls its pod makes.

The recorder reads its RecordingSession (to decide whether a SIGTERM ends the recording)
and merge-patches the session's status subresource (status.pipeline). The `kubernetes`
package would do both, but importing its client loads every generated model: about
36 MiB of the recorder's RSS (bench.pod_rss). This does the same on urllib3, which the
recorder carries for MinIO anyway.

It authenticates as `load_incluster_config` does: the pod's service account token and
CA under SERVICE_ACCOUNT_DIR, the API at KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT.
Request building is pure (`Request`, `custom_object_path`, `api_error`); `InClusterClient`
only adds the token and sends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"
# (connect, read) seconds, per attempt; what the recorder gave the kubernetes client.
TIMEOUT = urllib3.Timeout(connect=5.0, read=15.0)
# As the kubernetes client's pool did (urllib3's default): connection errors are retried
# 3 times, reads only for GET. Redirects are never followed: the token stays with the API.
RETRIES = urllib3.Retry(total=3, redirect=False)
MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = "lucid-recorder"
# Enough of the API's Status message to say what went wrong, not a whole body in a log.
MESSAGE_LIMIT = 300


class KubeConfigError(Exception):
    """Not running in a pod: no API address, token or CA where Kubernetes puts them."""


class KubeApiError(Exception):
    """The API answered with an error status (the ApiException of the kubernetes client)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"{status} {reason}" + (f": {message}" if message else ""))


@dataclass(frozen=True)
class Request:
    """One API call without its credentials: the client adds the token when it sends."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None

    def headers(self, token: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT,
                   "Authorization": f"Bearer {token}"}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        return headers


def custom_object_path(group: str, version: str, namespace: str, plural: str, name: str,
                       subresource: str | None = None) -> str:
    parts = ["apis", group, version, "namespaces", namespace, plural, name]
    if subresource:
        parts.append(subresource)
    return "/" + "/".join(quote(part, safe="") for part in parts)


def get(path: str) -> Request:
    return Request("GET", path)


def merge_patch(path: str, body: Mapping[str, Any]) -> Request:
    """A JSON merge patch (RFC 7386), what the kubernetes client sent for a dict body."""
    return Request("PATCH", path, json.dumps(body).encode(), MERGE_PATCH)


def api_error(status: int, reason: str, data: bytes) -> KubeApiError:
    """The error for a non-2xx answer; the message comes only from a Status object."""
    message = ""
    try:
        decoded = json.loads(data)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        message = str(decoded.get("message", ""))[:MESSAGE_LIMIT]
    return KubeApiError(status, reason, message)


def decode(status: int, reason: str, data: bytes) -> Any:
    if not 200 <= status < 300:
        raise api_error(status, reason, data)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise KubeApiError(status, reason, "the answer is not JSON") from None


def api_address(environ: Mapping[str, str]) -> tuple[str, int]:
    host, port = environ.get(HOST_ENV, ""), environ.get(PORT_ENV, "")
    if not host or not port:
        raise KubeConfigError(f"{HOST_ENV} and {PORT_ENV} are not set: not running in a pod")
    try:
        return host, int(port)
    except ValueError:
        raise KubeConfigError(f"{PORT_ENV} is not a port number: {port!r}") from None


class InClusterClient:
    def __init__(self, host: str, port: int, token_file: Path, ca_file: Path,
                 timeout: urllib3.Timeout = TIMEOUT) -> None:
        self.token_file = token_file
        # The pool verifies the API's certificate against the pod's CA, host name or IP
        # included, as the kubernetes client did.
        self._pool = urllib3.HTTPSConnectionPool(
            host, port, maxsize=2, block=False, cert_reqs="CERT_REQUIRED",
            ca_certs=str(ca_file), timeout=timeout, retries=RETRIES)

    @classmethod
    def from_pod(cls, environ: Mapping[str, str] = os.environ,
                 account_dir: Path = SERVICE_ACCOUNT_DIR) -> InClusterClient:
        host, port = api_address(environ)
        token, ca = account_dir / "token", account_dir / "ca.crt"
        for path, what in ((token, "service account token"), (ca, "service account CA")):
            if not path.is_file() or path.stat().st_size == 0:
                raise KubeConfigError(f"no {what} at {path}: is the token automounted?")
        client = cls(host, port, token, ca)
        client._token()  # an unreadable token fails at start, not at the first write
        return client

    def _token(self) -> str:
        # Read for every call: the kubelet rotates bound tokens in place (about hourly),
        # and one small read per status write is nothing against a stale-token 401.
        token = self.token_file.read_text().strip()
        if not token:
            raise KubeConfigError(f"the service account token at {self.token_file} is empty")
        return token

    def send(self, request: Request) -> Any:
        """The decoded JSON answer; KubeApiError for an error status or an answer that is
        not JSON; urllib3 and OS errors (connection, timeout) as they come."""
        response = self._pool.urlopen(request.method, request.path, body=request.body,
                                      headers=request.headers(self._token()),
                                      redirect=False, preload_content=True)
        return decode(response.status, response.reason or "", response.data)

    def get_custom_object(self, group: str, version: str, namespace: str, plural: str,
                          name: str) -> dict[str, Any]:
        return self.send(get(custom_object_path(group, version, namespace, plural, name)))

    def patch_custom_object_status(self, group: str, version: str, namespace: str,
                                   plural: str, name: str, body: Mapping[str, Any]) -> None:
        self.send(merge_patch(
            custom_object_path(group, version, namespace, plural, name, "status"), body))
