"""Watches and samplers of the operator-scale benchmark: who got where, when, at what cost.

A `Tracker` list-watches RecordingSessions and the operator's recorder pods (raw JSON
streams through the admin kubeconfig: no model deserialization, so the bench's own
CPU stays small) and stamps the first time each object existed, each session reached
phase Recording, each pod ran, and each object was deleted. A `Sampler` reads the RSS
and CPU seconds of the operator and the stack's components twice a second.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

from bench.common import MIB, log

SESSIONS_PATH = "/apis/lucid.dev/v1alpha1/recordingsessions"
PODS_PATH = "/api/v1/pods"
RECORDER_SELECTOR = "app.kubernetes.io/managed-by=lucid-operator"
WATCH_SECONDS = 120  # server-side timeout of one watch request; it is then resumed
READ_TIMEOUT = (5.0, WATCH_SECONDS + 30.0)


@dataclass
class Stamps:
    """First-seen seconds (since `t0`) per object key, for each state of one kind."""

    created: dict[str, float] = field(default_factory=dict)
    reached: dict[str, float] = field(default_factory=dict)  # Recording / Running
    deleted: dict[str, float] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)

    @property
    def live(self) -> int:
        return len(self.created) - len(self.deleted)


class Tracker:
    """Stamps sessions and recorder pods from two watches; `wait` blocks on a predicate."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.t0 = time.monotonic()
        self.sessions = Stamps()
        self.pods = Stamps()
        self.events = {"sessions": 0, "pods": 0}
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, timeout: float = 30.0) -> Tracker:
        listed = [threading.Event(), threading.Event()]
        for (kind, path, selector, on_object), ready in zip(
                (("sessions", SESSIONS_PATH, None, self._session),
                 ("pods", PODS_PATH, RECORDER_SELECTOR, self._pod)), listed, strict=True):
            thread = threading.Thread(target=self._list_watch, name=f"watch {kind}", daemon=True,
                                      args=(kind, path, selector, on_object, ready))
            thread.start()
            self._threads.append(thread)
        for ready in listed:
            if not ready.wait(timeout):
                raise TimeoutError(f"watches not listed within {timeout:g}s: {self.errors}")
        return self

    def mark(self) -> None:
        """Restart the clock: stamps are seconds since this call."""
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """True once `done()` holds, False at the timeout (or when the tracker stops)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._changed.wait(min(left, 1.0))
        return True

    # -- the watches ---------------------------------------------------------------------

    def _session(self, kind: str, obj: dict[str, Any], at: float) -> None:
        key = _key(obj)
        if kind == "DELETED":
            self.sessions.deleted.setdefault(key, at)
            return
        self.sessions.created.setdefault(key, at)
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Recording":
            self.sessions.reached.setdefault(key, at)
        elif phase == "Failed":
            self.sessions.failed.setdefault(key, at)

    def _pod(self, kind: str, obj: dict[str, Any], at: float) -> None:
        key = _key(obj)
        if kind == "DELETED":
            self.pods.deleted.setdefault(key, at)
            return
        self.pods.created.setdefault(key, at)
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Running":
            self.pods.reached.setdefault(key, at)
        elif phase == "Failed":
            self.pods.failed.setdefault(key, at)

    def _list_watch(self, kind: str, path: str, selector: str | None,
                    on_object: Callable[[str, dict[str, Any], float], None],
                    listed: threading.Event) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._list(path, selector, on_object)
                    listed.set()
                version = self._watch(kind, path, selector, version, on_object)
            except (client.ApiException, OSError, ValueError, HTTPError) as exc:
                if self._stop.is_set():
                    return  # the stack is going away under the watch
                # A 410 Gone (expired version) or a dropped stream: relist.
                self.errors.append(f"{kind}: {exc}")
                log(f"operator_scale: {kind} watch failed, relisting: {exc}")
                version = ""
                self._stop.wait(0.5)

    def _list(self, path: str, selector: str | None,
              on_object: Callable[[str, dict[str, Any], float], None]) -> str:
        params = [("labelSelector", selector)] if selector else []
        response = self.api.rest_client.GET(self.api.configuration.host + path,
                                            query_params=params, _request_timeout=READ_TIMEOUT)
        body = json.loads(response.data)
        at = self.now()
        with self._changed:
            for item in body.get("items") or []:
                on_object("ADDED", item, at)
            self._changed.notify_all()
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, kind: str, path: str, selector: str | None, version: str,
               on_object: Callable[[str, dict[str, Any], float], None]) -> str:
        params = [("watch", "true"), ("resourceVersion", version),
                  ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
        if selector:
            params.append(("labelSelector", selector))
        response = self.api.rest_client.GET(self.api.configuration.host + path,
                                            query_params=params, _preload_content=False,
                                            _request_timeout=READ_TIMEOUT)
        try:
            for line in _lines(response, self._stop):
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    raise ValueError(f"watch error: {obj.get('message')}")
                version = obj["metadata"].get("resourceVersion") or version
                if event["type"] == "BOOKMARK":
                    continue
                at = self.now()
                with self._changed:
                    self.events[kind] += 1
                    on_object(event["type"], obj, at)
                    self._changed.notify_all()
        finally:
            response.release_conn()
        return version


def _lines(response: Any, stop: threading.Event) -> Iterator[str]:
    for line in iter_resp_lines(response):
        if stop.is_set():
            return
        if line:
            yield line if isinstance(line, str) else line.decode()


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}/{meta.get('uid', '')}"


# -- CPU and memory ------------------------------------------------------------------------


def process_cpu(proc: psutil.Process) -> float:
    """user+sys of the process, plus its children it has reaped."""
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(proc: psutil.Process) -> float:
    """CPU of every live descendant (reaped ones are in their parents' children times)."""
    total = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            total += process_cpu(child)
    return total


class Sampler:
    """Samples RSS and cumulative CPU seconds of named processes twice a second."""

    def __init__(self, procs: dict[str, psutil.Process], clock: Callable[[], float],
                 interval: float = 0.5) -> None:
        self.procs = procs
        self.clock = clock
        self.interval = interval
        # (t, {name: (rss MiB, cpu s)}) per sample
        self.samples: list[tuple[float, dict[str, tuple[float, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def snapshot(self) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                out[name] = (proc.memory_info().rss / MIB, process_cpu(proc))
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((round(self.clock(), 2), self.snapshot()))

    def peak_rss(self, name: str) -> float | None:
        values = [s[name][0] for _t, s in self.samples if name in s]
        return max(values) if values else None

    def series(self, name: str) -> list[tuple[float, float, float]]:
        """(t, RSS MiB, CPU s) of one process."""
        return [(t, round(s[name][0], 1), round(s[name][1], 2))
                for t, s in self.samples if name in s]
