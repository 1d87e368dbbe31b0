"""One configuration of the operator-scale benchmark on a fresh local stack.

Starts a Stack, installs the CRD, makes the namespaces and their Secrets, runs the real
operator with the shell stand-in recorder and the configuration's LUCID_* settings, then
applies N sessions in one `kubectl apply`, waits (by watching) until every pod exists
and every session is Recording, and deletes them all with one `kubectl delete`, waiting
until every session and pod is gone.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client
from kubernetes import config as kube_config
from urllib3.exceptions import HTTPError

from bench.common import BENCH_DIR, log
from bench.operator_scale_timeline import cpu_between, cumulative, milestones, rate
from bench.operator_scale_watch import Sampler, Tracker, process_cpu, tree_cpu
from lucid_common.api import GROUP, PLURAL, VERSION
from lucid_devstack.operator_proc import STANDIN_IMAGE, OperatorProcess
from lucid_devstack.proc import StackError
from lucid_devstack.stack import Stack

STANDIN = BENCH_DIR / "operator_scale_recorder.sh"
SECRETS = {
    "rdp-login": {"username": "bench", "password": "unused-by-the-stand-in"},
    "minio-creds": {"accessKey": "bench", "secretKey": "unused-by-the-stand-in"},
    "auditor-key": {"publicKey": "placeholder public key"},
}
# The operator settings every configuration shares.
BASE_SETTINGS = {
    "LUCID_RECORDER_IMAGE": STANDIN_IMAGE,
    "LUCID_RECORDER_COMMAND": f"/bin/sh,{STANDIN}",
    # The stand-in serves no /healthz: no liveness probe may stop it.
    "LUCID_RECORDER_METRICS_PORT": "0",
    "LUCID_TERMINATION_GRACE_SECONDS": "10",
    "LUCID_LOG_LEVEL": "INFO",
}
CLIENT_THREADS = 16
COMPONENTS = ("operator", "kube-apiserver", "etcd", "kube-controller-manager", "kubelet")


@dataclass(frozen=True)
class Config:
    """An operator configuration: its LUCID_* settings and how it watches."""

    name: str
    label: str
    settings: dict[str, str] = field(default_factory=dict)
    # Watch the session namespaces by name (a watch per namespace) instead of cluster-wide.
    per_namespace: bool = False


def namespaces(count: int) -> list[str]:
    return [f"bench-{i:02d}" for i in range(count)]


def session_manifests(total: int, spaces: list[str], target_port: int) -> list[dict[str, Any]]:
    """`total` sessions spread round-robin over `spaces`; the target is any open TCP port
    (the operator only checks that it accepts a connection; the stand-in never dials)."""
    out = []
    for i in range(total):
        out.append({
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "RecordingSession",
            "metadata": {"name": f"s-{i:04d}", "namespace": spaces[i % len(spaces)]},
            "spec": {
                "target": {"host": "127.0.0.1", "port": target_port,
                           "credentialsSecretRef": {"name": "rdp-login"},
                           "tls": {"mode": "Fingerprint", "fingerprintSha256": "0" * 64}},
                "storage": {"endpoint": "127.0.0.1:9", "bucket": "recordings",
                            "credentialsSecretRef": {"name": "minio-creds"},
                            "tls": {"enabled": False}},
                "encryption": {"recipientPublicKeySecretRef": {"name": "auditor-key"}},
            },
        })
    return out


def api_client(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=str(stack.kube.kubeconfig),
                                 client_configuration=configuration)
    # One pooled connection per creating thread, plus the two watches.
    configuration.connection_pool_maxsize = CLIENT_THREADS + 4
    return client.ApiClient(configuration)


def create_all(api: client.ApiClient, manifests: list[dict[str, Any]], timeout: float) -> None:
    """POST every session from CLIENT_THREADS threads: "all at once", as fast as the API
    takes them. (`kubectl apply -f` of the same file sends one object after another,
    rate-limited on the client: 200 sessions took over 2 minutes that way, so it would
    measure kubectl, not the operator.)"""
    host = api.configuration.host

    def create(manifest: dict[str, Any]) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{manifest['metadata']['namespace']}/{PLURAL}"
        api.rest_client.POST(host + path, body=manifest, _request_timeout=(5, 60),
                             headers={"Content-Type": "application/json"})

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for future in [pool.submit(create, m) for m in manifests]:
            future.result(timeout=timeout)


def delete_all(api: client.ApiClient, spaces: list[str], timeout: float) -> list[str]:
    """`kubectl delete recordingsessions --all` per namespace, as one deletecollection
    call each (kubectl deletes one object after another, see create_all).

    Under load a deletecollection can outlast the API server's request timeout (504)
    after marking only some sessions; it is repeated until every session of the
    namespace carries a deletionTimestamp. Returns what went wrong on the way."""
    host = api.configuration.host
    problems: list[str] = []
    deadline = time.monotonic() + timeout

    def undeleted(url: str) -> int:
        response = api.rest_client.GET(url, _request_timeout=(5, 60))
        items = json.loads(response.data).get("items") or []
        return sum(not item["metadata"].get("deletionTimestamp") for item in items)

    def delete(space: str) -> None:
        url = f"{host}/apis/{GROUP}/{VERSION}/namespaces/{space}/{PLURAL}"
        while True:
            try:
                api.rest_client.DELETE(url, _request_timeout=(5, 120),
                                       headers={"Content-Type": "application/json"})
                return
            except (client.ApiException, HTTPError, OSError) as exc:
                problems.append(f"{space}: {getattr(exc, 'status', '')} {type(exc).__name__}")
                log(f"operator_scale: deletecollection in {space} failed ({exc!s:.80}); "
                    "checking what is left")
            try:
                if undeleted(url) == 0:
                    return
            except (client.ApiException, HTTPError, OSError) as exc:
                problems.append(f"{space}: list {type(exc).__name__}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sessions in {space} still not deleted: {problems}")
            time.sleep(1.0)

    with ThreadPoolExecutor(len(spaces)) as pool:
        for future in [pool.submit(delete, s) for s in spaces]:
            future.result(timeout=timeout)
    return problems


def _prepare(stack: Stack, api: client.ApiClient, spaces: list[str]) -> None:
    stack.kubectl("apply", "-f", str(BENCH_DIR.parent / "crds"))
    stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  f"crd/{PLURAL}.{GROUP}")
    core = client.CoreV1Api(api)
    for space in spaces:
        core.create_namespace({"metadata": {"name": space}}, _request_timeout=(5, 30))
        for name, data in SECRETS.items():
            core.create_namespaced_secret(space, {"metadata": {"name": name},
                                                  "stringData": data},
                                          _request_timeout=(5, 30))


def _procs(stack: Stack, operator: OperatorProcess) -> dict[str, psutil.Process]:
    pids = {name: stack.kube.procs[name].popen.pid  # type: ignore[union-attr]
            for name in ("kube-apiserver", "etcd", "kube-controller-manager")}
    assert operator.proc is not None and operator.proc.popen is not None
    assert stack.kubelet.proc is not None and stack.kubelet.proc.popen is not None
    pids["operator"] = operator.proc.popen.pid
    pids["kubelet"] = stack.kubelet.proc.popen.pid
    return {name: psutil.Process(pid) for name, pid in pids.items()}


def _cpu_snapshot(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """Cumulative CPU seconds: each component, the pods' processes, and this bench."""
    out = {name: process_cpu(proc) for name, proc in procs.items()}
    # The kubelet's reaped children (wrappers, finished containers) are in its own
    # children times; split them out with the live containers as "pods".
    kubelet = procs["kubelet"].cpu_times()
    out["kubelet"] = kubelet.user + kubelet.system
    out["pods"] = kubelet.children_user + kubelet.children_system + tree_cpu(procs["kubelet"])
    out["bench (watches, kubectl)"] = process_cpu(psutil.Process())
    return out


def _metric_counts(text: str) -> dict[str, float]:
    """The operator's reconcile counters, by handler and result."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r'lucid_operator_reconciles_total\{(.*)\} ([0-9.e+]+)', line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            key = "/".join(labels.get(k, "?") for k in ("handler", "outcome"))
            counts[key] = float(match.group(2))
        elif line.startswith("lucid_operator_errors_total{"):
            handler = re.search(r'handler="([^"]*)"', line)
            counts[f"{handler.group(1) if handler else '?'}/raised"] = float(line.split()[-1])
    return counts


def _log_levels(path: Path) -> dict[str, int]:
    levels: dict[str, int] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return levels
    for level in re.findall(r'"level":\s*"(\w+)"', text):
        levels[level] = levels.get(level, 0) + 1
    return levels


def run_config(config: Config, total: int, spaces: list[str], workdir: Path,
               timeout: float) -> dict[str, Any]:
    """Apply `total` sessions under `config`, then delete them; everything measured."""
    log(f"operator_scale[{config.name}]: starting a fresh stack")
    stack = Stack.create(workdir / config.name)
    stack.workdir.mkdir(parents=True, exist_ok=True)
    stack.start()
    operator: OperatorProcess | None = None
    tracker: Tracker | None = None
    sampler: Sampler | None = None
    try:
        api = api_client(stack)
        _prepare(stack, api, spaces)
        settings = {**BASE_SETTINGS, **config.settings}
        if config.per_namespace:
            settings["LUCID_NAMESPACES"] = ",".join(spaces)
        operator = OperatorProcess(stack, settings=settings).start()
        procs = _procs(stack, operator)
        tracker = Tracker(api).start()
        sampler = Sampler(procs, tracker.now)
        manifests_list = session_manifests(total, spaces, stack.minio.port)
        load_before = os.getloadavg()
        time.sleep(2.0)  # let the operator's startup settle before the clock starts
        cpu = {"start": _cpu_snapshot(procs)}
        tracker.mark()
        sampler.start()
        log(f"operator_scale[{config.name}]: applying {total} sessions")
        create_all(api, manifests_list, timeout)
        apply_s = tracker.now()
        sessions, pods = tracker.sessions, tracker.pods
        pods_ok = tracker.wait(lambda: len(pods.created) >= total, timeout)
        cpu["pods_exist"] = _cpu_snapshot(procs)
        recording_ok = tracker.wait(lambda: len(sessions.reached) >= total,
                                    max(1.0, timeout - tracker.now()))
        cpu["recording"] = _cpu_snapshot(procs)
        up_s = tracker.now()
        log(f"operator_scale[{config.name}]: {len(sessions.reached)}/{total} Recording "
            f"after {up_s:.1f} s; deleting them all")
        rss_at_recording = sampler.snapshot().get("operator", (0.0, 0.0))[0]
        metrics_up = _metric_counts(operator.metrics())
        delete_started = tracker.now()
        delete_problems = delete_all(api, spaces, timeout)
        delete_cmd_s = tracker.now() - delete_started
        gone_ok = tracker.wait(lambda: sessions.live <= 0 and pods.live <= 0, timeout)
        cpu["deleted"] = _cpu_snapshot(procs)
        end_s = tracker.now()
        sampler.stop()
        metrics_all = _metric_counts(operator.metrics())
        log(f"operator_scale[{config.name}]: all gone {end_s - delete_started:.1f} s after "
            f"the delete (complete: {gone_ok})")
        deleted_sessions = [t - delete_started for t in sessions.deleted.values()]
        deleted_pods = [t - delete_started for t in pods.deleted.values()]
        return {
            "label": config.label,
            "settings": config.settings,
            "per_namespace": config.per_namespace,
            "sessions": total,
            "namespaces": len(spaces),
            "complete": {"pods_exist": pods_ok, "recording": recording_ok, "deleted": gone_ok},
            "counts": {"pods_created": len(pods.created), "pods_running": len(pods.reached),
                       "recording": len(sessions.reached),
                       "sessions_failed": len(sessions.failed),
                       "pods_failed": len(pods.failed),
                       "sessions_deleted": len(sessions.deleted),
                       "pods_deleted": len(pods.deleted)},
            "apply_s": round(apply_s, 2),
            "delete_command_s": round(delete_cmd_s, 2),
            "delete_problems": delete_problems,
            "pods_exist": milestones(pods.created.values(), total),
            "pods_running": milestones(pods.reached.values(), total),
            "recording": milestones(sessions.reached.values(), total),
            "sessions_gone": milestones(deleted_sessions, total),
            "pods_gone": milestones(deleted_pods, total),
            "rate_per_s": {"pods_exist": rate(pods.created.values()),
                           "recording": rate(sessions.reached.values()),
                           "sessions_gone": rate(deleted_sessions)},
            "curves": {"pods_exist": cumulative(pods.created.values()),
                       "recording": cumulative(sessions.reached.values()),
                       "sessions_gone": cumulative(deleted_sessions),
                       "pods_gone": cumulative(deleted_pods)},
            "up_wall_s": round(up_s, 2),
            "delete_wall_s": round(end_s - delete_started, 2),
            "cpu_s": {"up": cpu_between(cpu["start"], cpu["recording"]),
                      "delete": cpu_between(cpu["recording"], cpu["deleted"])},
            "operator": {
                "rss_mib_peak": sampler.peak_rss("operator"),
                "rss_mib_at_recording": round(rss_at_recording, 1),
                "rss_mib_end": sampler.snapshot().get("operator", (None, None))[0],
                "rss_mib_start": sampler.samples[0][1]["operator"][0] if sampler.samples
                else None,
                "reconciles_up": metrics_up,
                "reconciles_all": metrics_all,
                "log_levels": _log_levels(operator.log) if operator.log else {},
            },
            "kubelet_rss_mib_peak": sampler.peak_rss("kubelet"),
            "timeline": {name: sampler.series(name) for name in COMPONENTS},
            "marks": {"apply_done": round(apply_s, 2), "recording": round(up_s, 2),
                      "delete": round(delete_started, 2), "gone": round(end_s, 2)},
            "watch_events": dict(tracker.events),
            "watch_errors": tracker.errors[:20],
            "load_average": {"before": load_before, "after": os.getloadavg()},
        }
    finally:
        if sampler is not None:
            sampler.stop()
        if tracker is not None:
            tracker.stop()
        if operator is not None:
            operator.stop()
        try:
            stack.stop()
        except StackError as exc:
            log(f"operator_scale[{config.name}]: stack teardown: {exc}")
