"""The local kubelet's API access: plain dicts over the kubernetes client's transport.

The kubelet works on raw JSON (the field names match the Kubernetes docs, and no
model round trip drops fields or mangles MicroTime), so it uses the client only
for what it is good at: reading kubeconfigs and holding the TLS connection pool.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config
from kubernetes.watch.watch import iter_resp_lines

log = logging.getLogger("lucid.kubelet")

# (connect, read) seconds: the API server is local, so anything slower is a fault.
DEFAULT_TIMEOUT = (5.0, 30.0)
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"

T = TypeVar("T")


class ApiError(Exception):
    """An API call failed; `status` is 0 when no HTTP answer came back at all."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


def _status_message(exc: ApiException) -> str:
    """Only the Status object's message: response bodies are never logged whole."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.startswith("{"):
        try:
            message = json.loads(body).get("message")
        except ValueError:
            message = None
        if isinstance(message, str):
            return message
    return str(exc.reason)


class Api:
    """One identity (kubeconfig) talking to the API server."""

    def __init__(self, kubeconfig: Path, agent: str) -> None:
        self.client: ApiClient = new_client_from_config(config_file=str(kubeconfig))
        self.client.user_agent = agent
        self.server: str = self.client.configuration.host

    @property
    def port(self) -> int:
        return urlsplit(self.server).port or 443

    def _send(self, method: str, path: str, query: Mapping[str, str] | None, body: Any,
              content_type: str, timeout: tuple[float, float]) -> urllib3.HTTPResponse:
        try:
            return self.client.call_api(
                path, method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=False,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            raise ApiError(int(exc.status or 0), _status_message(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from None

    def call(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
             body: Any = None, content_type: str = "application/json",
             timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> dict[str, Any]:
        resp = self._send(method, path, query, body, content_type, timeout)
        try:
            data = resp.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, f"{method} {path}: reading the answer: {exc}") from None
        finally:
            resp.release_conn()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            raise ApiError(0, f"{method} {path}: the answer is not JSON") from None
        return parsed if isinstance(parsed, dict) else {}

    def get(self, path: str, **query: str) -> dict[str, Any]:
        return self.call("GET", path, query=query)

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, path: str, query: Mapping[str, str], server_timeout: int) -> Iterator[dict]:
        """Watch events as dicts; ends when the server closes the stream."""
        params = dict(query, watch="true", allowWatchBookmarks="true",
                      timeoutSeconds=str(server_timeout))
        # The read timeout only has to outlast the quiet gaps: bookmarks arrive about
        # once a minute, and the server ends the watch itself after server_timeout.
        resp = self._send("GET", path, params, None, "application/json",
                          (5.0, server_timeout + 30.0))
        try:
            for line in iter_resp_lines(resp):
                if line:
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, f"watch {path}: {type(exc).__name__}: {exc}") from None
        except ValueError:
            raise ApiError(0, f"watch {path}: an event is not JSON") from None
        finally:
            resp.release_conn()


def retrying(what: str, fn: Callable[[], T], attempts: int = 4, first_delay: float = 0.5) -> T:
    """Run `fn`, retrying transient API errors with doubling delays; re-raise the rest."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ApiError as exc:
            if not exc.transient or attempt == attempts:
                raise
            log.warning("%s failed (attempt %d/%d, retrying in %.1fs): %s",
                        what, attempt, attempts, delay, exc)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # the loop returns or raises


def rfc3339(ts: float | None = None) -> str:
    """Second precision, as the API server stores metav1.Time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def micro_time(ts: float | None = None) -> str:
    """metav1.MicroTime wants exactly six fractional digits."""
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def pod_path(namespace: str, name: str, sub: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}" + (f"/{sub}" if sub else "")


def pod_ref(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


WATCH_SECONDS = 240


def list_watch(api: Api, path: str, query: Mapping[str, str], what: str,
               on_sync: Callable[[list[dict[str, Any]]], None],
               on_event: Callable[[str, dict[str, Any]], None],
               stop: threading.Event) -> None:
    """List, then watch from the list's resourceVersion; relist after errors and expiry.

    on_sync gets the full list after every (re)list, so the caller can notice objects
    that vanished while no watch was open.
    """
    version: str | None = None
    failures = 0
    while not stop.is_set():
        try:
            if version is None:
                listed = api.call("GET", path, query=query)
                version = str(listed.get("metadata", {}).get("resourceVersion", ""))
                on_sync(listed.get("items") or [])
            for event in api.watch(path, dict(query, resourceVersion=version), WATCH_SECONDS):
                if stop.is_set():
                    return
                kind = str(event.get("type", ""))
                obj = event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    if code == 410:
                        log.info("%s: watch expired, relisting", what)
                        version = None
                        break
                    raise ApiError(code, str(obj.get("message", "watch error")))
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    on_event(kind, obj)
            failures = 0
        except ApiError as exc:
            failures += 1
            delay = min(0.25 * 2 ** failures, 10.0)
            log.warning("%s: %s; relisting in %.1fs", what, exc, delay)
            version = None
            stop.wait(delay)
