"""The local kubelet's control-plane side: the Node object and its Lease, and scheduling."""

from __future__ import annotations

import heapq
import logging
import os
import platform
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lucid_devstack import versions
from lucid_devstack.kube import NODE_NAME
from lucid_devstack.kubelet_api import (
    STRATEGIC,
    Api,
    ApiError,
    micro_time,
    pod_ref,
    retrying,
    rfc3339,
)

log = logging.getLogger("lucid.kubelet")

NODE_LABELS = {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
               "lucid.dev/local-kubelet": "true"}
LEASE_SECONDS = 40
LEASE_RENEW = 10.0
NODE_STATUS_EVERY = 60.0
UNSCHEDULABLE = ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
                 "preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                 "scheduling.")


# --- node agent --------------------------------------------------------------------------


def _memory_ki() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "0"


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError as exc:
        log.debug("no /etc/os-release: %s", exc)
    return "Linux"


class NodeAgent:
    """Keeps the Node object present and Ready, and its Lease fresh."""

    def __init__(self, api: Api, node_name: str, stop: threading.Event,
                 kubelet_port: int = 0) -> None:
        self.api = api
        self.node_name = node_name
        self.stop = stop
        # Where the apiserver reaches this kubelet's HTTPS server (kubectl logs); 0: none.
        self.kubelet_port = kubelet_port
        self.node_uid = ""
        # The conditions never change, so their transition time is this agent's start.
        self.since = rfc3339()

    def _node_status(self) -> dict[str, Any]:
        now = rfc3339()
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": _memory_ki(), "pods": "110"}

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": self.since}

        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        return {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "local kubelet is posting ready status"),
            ],
            # The apiserver prefers InternalIP (kube.py sets --kubelet-preferred-address-types):
            # the host name resolves nowhere.
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node_name}],
            "capacity": capacity, "allocatable": capacity,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": platform.release(), "osImage": _os_image(),
                "containerRuntimeVersion": "lucid-local://0.1",
                "kubeletVersion": f"{versions.KUBERNETES}-lucid-local",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch,
            },
        }

    def register(self) -> None:
        """Create (or adopt) the Node and mark it Ready; retries until it works or we stop."""
        path = f"/api/v1/nodes/{self.node_name}"
        delay = 0.5
        while not self.stop.is_set():
            try:
                node = self.api.get_or_none(path)
                if node is None:
                    node = self.api.call("POST", "/api/v1/nodes", body={
                        "apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": self.node_name, "labels": NODE_LABELS}})
                    log.info("node %s registered", self.node_name)
                elif any(node["metadata"].get("labels", {}).get(k) != v
                         for k, v in NODE_LABELS.items()):
                    node = self.api.call("PATCH", path, content_type=STRATEGIC,
                                         body={"metadata": {"labels": NODE_LABELS}})
                self.node_uid = node["metadata"]["uid"]
                self.post_status()
                self.renew_lease()
                return
            except ApiError as exc:
                log.warning("node registration failed, retrying in %.1fs: %s", delay, exc)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def post_status(self) -> None:
        self.api.call("PATCH", f"/api/v1/nodes/{self.node_name}/status",
                      content_type=STRATEGIC, body={"status": self._node_status()})

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": micro_time()}
        try:
            self.api.call("PATCH", path, content_type=STRATEGIC, body={"spec": spec})
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.api.call(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": self.node_name, "ownerReferences": [{
                          "apiVersion": "v1", "kind": "Node", "name": self.node_name,
                          "uid": self.node_uid}]},
                      "spec": spec})

    def run(self) -> None:
        last_status = time.monotonic()
        while not self.stop.wait(LEASE_RENEW):
            try:
                retrying("lease renewal", self.renew_lease, attempts=3)
                if time.monotonic() - last_status >= NODE_STATUS_EVERY:
                    retrying("node status", self.post_status, attempts=3)
                    last_status = time.monotonic()
            except ApiError as exc:
                log.warning("node heartbeat failed: %s", exc)


# --- scheduler ---------------------------------------------------------------------------


def _match_expression(expr: Mapping[str, Any], value: str | None) -> bool:
    operator, values = expr.get("operator"), list(expr.get("values") or [])
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and value.lstrip("-").isdigit() \
            and values and values[0].lstrip("-").isdigit():
        return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
    return False


def node_fits(pod: Mapping[str, Any], node_name: str, labels: Mapping[str, str]) -> bool:
    """nodeSelector and required node affinity, as the scheduler's NodeAffinity filter."""
    spec = pod["spec"]
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    for term in required.get("nodeSelectorTerms") or []:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue  # an empty term matches nothing
        if all(_match_expression(e, labels.get(e["key"])) for e in exprs) and all(
                _match_expression(f, node_name if f["key"] == "metadata.name" else None)
                for f in fields):
            return True
    return False


class Scheduler:
    """Binds unscheduled default-scheduler pods to the one node, or marks them Unschedulable."""

    RETRY_UNSCHEDULABLE = 30.0

    def __init__(self, api: Api, node_name: str, stop: threading.Event,
                 kubelet_port: int = 0) -> None:
        self.api = api
        self.node_name = node_name
        self.stop = stop
        # Where the apiserver reaches this kubelet's HTTPS server (kubectl logs); 0: none.
        self.kubelet_port = kubelet_port
        self.pending: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.queue: queue.Queue[str] = queue.Queue()
        # One retry time per pod: every watch event also queues the pod, and each
        # attempt would otherwise start yet another retry chain.
        self.timers: list[tuple[float, str]] = []
        self.due: dict[str, float] = {}
        self.synced = threading.Event()

    def sync(self, pods: list[dict[str, Any]]) -> None:
        with self.lock:
            self.pending.clear()
        for pod in pods:
            self.offer(pod)
        self.synced.set()

    def event(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            with self.lock:
                self.pending.pop(pod["metadata"]["uid"], None)
        else:
            self.offer(pod)

    def offer(self, pod: dict[str, Any]) -> None:
        spec, meta = pod["spec"], pod["metadata"]
        if spec.get("nodeName") or meta.get("deletionTimestamp") or spec.get("schedulingGates"):
            return
        if (spec.get("schedulerName") or "default-scheduler") != "default-scheduler":
            return
        with self.lock:
            self.pending[meta["uid"]] = pod
        self.queue.put(meta["uid"])

    def work(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                at, uid = heapq.heappop(self.timers)
                if self.due.get(uid) == at:
                    del self.due[uid]
                    self.queue.put(uid)
            try:
                uid = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            with self.lock:
                pod = self.pending.get(uid)
            if pod is None:
                continue
            try:
                retry = self.schedule(pod)
            except ApiError as exc:
                log.warning("scheduling pod %s failed, retrying in 2s: %s", pod_ref(pod), exc)
                retry = 2.0
            if retry is None:
                with self.lock:
                    self.pending.pop(uid, None)
                self.due.pop(uid, None)
            else:
                at = time.monotonic() + retry
                self.due[uid] = at
                heapq.heappush(self.timers, (at, uid))

    def schedule(self, pod: dict[str, Any]) -> float | None:
        """Bind or mark unschedulable; returns when to look again (None: done)."""
        meta = pod["metadata"]
        node = self.api.get(f"/api/v1/nodes/{self.node_name}")
        if not node_fits(pod, self.node_name, node["metadata"].get("labels") or {}):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                       and c.get("message") == UNSCHEDULABLE for c in conditions):
                self.api.call(
                    "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                    content_type=STRATEGIC, body={"metadata": {"uid": meta["uid"]}, "status": {
                        "conditions": [{"type": "PodScheduled", "status": "False",
                                        "reason": "Unschedulable", "message": UNSCHEDULABLE,
                                        "lastProbeTime": None,
                                        "lastTransitionTime": rfc3339()}]}})
                log.info("pod %s unschedulable: node selector/affinity does not match %s",
                         pod_ref(pod), self.node_name)
            return self.RETRY_UNSCHEDULABLE
        try:
            self.api.call(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
                body={"apiVersion": "v1", "kind": "Binding",
                      "metadata": {"name": meta["name"], "uid": meta["uid"]},
                      "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}})
        except ApiError as exc:
            if exc.status in (404, 409):
                return None  # deleted meanwhile, or already bound
            raise
        log.info("pod %s bound to %s", pod_ref(pod), self.node_name)
        return None
