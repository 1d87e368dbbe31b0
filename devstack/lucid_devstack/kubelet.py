"""A "local kubelet": runs the stack's pods as OCI containers (podman) or as local processes.

    python -m lucid_devstack.kubelet --node-kubeconfig X --scheduler-kubeconfig Y \\
        --node-name lucid-local --workdir DIR

One process, three jobs, two identities:

* node agent (node identity): registers the Node and renews its Lease every 10 s;
* scheduler (system:kube-scheduler identity): binds pending default-scheduler pods to
  this node when its nodeSelector / required node affinity fit;
* kubelet (node identity): runs each bound pod's containers with the pod's volumes, env
  and user, probes them, reports status through pods/status and finalizes deletions.

Two runtimes, chosen by each container's image:

* container mode (every image not under `process.local/`): `podman run` of the image from
  local storage (never pulled: a missing image waits as ErrImageNeverPull), non-root,
  read-only root, capabilities and memory/CPU limits as the spec says, the pod's volumes
  bind-mounted (kubelet_podman). A real kubelet with a CRI runtime cannot run in this
  sandbox: docs/containers.md says exactly why.
* process mode (images named `process.local/...`, the fast path for stand-ins): the
  container's `command + args` as a process group in a private mount namespace on the
  host (kubelet_spec's wrapper).

kubelet_node holds the first two jobs, kubelet_pod, kubelet_spec and kubelet_podman the
third. kubelet_server serves /containerLogs over HTTPS (the port the Node advertises), so
`kubectl logs` works in both modes.

Supported: env (value, secretKeyRef, configMapKeyRef, fieldRef, envFrom, $(VAR)
expansion), volumes (secret, configMap, emptyDir, projected with serviceAccountToken /
configMap / secret / downwardAPI, downwardAPI, hostPath; items, modes, optional,
subPath), securityContext (runAsUser/Group, runAsNonRoot, fsGroup, supplementalGroups,
readOnlyRootFilesystem, allowPrivilegeEscalation, capabilities), httpGet / tcpSocket /
exec probes (startup, liveness, readiness), restartPolicy with back-off,
FallbackToLogsOnError, graceful deletion, in-cluster config inside pods, `kubectl logs`
(follow, previous, tail, timestamps, since, limit-bytes; kubelet_server, kubelet_logs).

Known differences from a real kubelet (on purpose or for lack of need):

* No network namespace: every pod shares the host network (IP 127.0.0.1), so a pod can
  reach etcd (plain HTTP on 127.0.0.1) directly. In process mode `command + args` run on
  the host, found on PATH (the venv's bin directory first).
* Process mode: missing volume mount points are created on the HOST (mkdir -p / touch);
  they stay.
* An emptyDir with a sizeLimit is a tmpfs of that size: a full volume answers ENOSPC,
  where a real kubelet would evict the pod once the volume outgrew its limit.
* Test knob, no kubelet has it: `LocalKubelet.set_node_disk_free(n)` (the file
  WORKDIR/kubelet/node-disk-free, read at each mount) caps every sized emptyDir mounted
  afterwards at n bytes (at least one page), as on a node whose disk is fuller than the
  pod's sizeLimit; each volume gets its own n, they do not share it.
* When the venv's interpreter lives under a directory others cannot enter (pyenv in
  0700 /root), that directory is covered by an empty tmpfs in each container and the
  interpreter bound back into it, so non-root pods can run Python.
* Init containers, image entrypoints in process mode, PVC and other volume types,
  resourceFieldRef, grpc probes, lifecycle hooks, terminationMessagePath files,
  emptyDir medium Memory (a plain directory is used), resource limits in process mode,
  activeDeadlineSeconds, readinessGates, ephemeral containers and Events are not
  supported. Pods needing the first ones fail with reason UnsupportedByLocalKubelet and
  a message saying what; the rest are ignored.
* Secret, ConfigMap, projected and downward API volumes of running pods are re-synced
  every LUCID_KUBELET_VOLUME_SYNC_SECONDS (default 10 s; a real kubelet takes about a
  minute), through one TTL cache of the objects for the whole node. A changed volume is
  rewritten like the real kubelet's AtomicWriter does: a new hidden version directory,
  then one rename of the `..data` symlink, each file a symlink through it, so a reader
  never sees a half-written file. subPath mounts keep what they had, as on a kubelet.
* Process mode: env var names that are not shell identifiers are skipped (logged by name).
* Container logs are one file per container (stdout and stderr interleaved, every run
  appended): `kubectl logs --timestamps` shows when the local kubelet first saw a line
  (polled four times a second), not when it was written; `stream=Stdout`/`Stderr` are
  refused. The kubelet's HTTPS server answers only /containerLogs and /healthz (no exec,
  attach, port-forward or stats), and only to the apiserver's client certificate.
* CrashLoopBackOff starts at 1 s and doubles to 30 s (kubelet: 10 s to 5 min).
* Tolerations are ignored: the node has no taints.
* A pod found already started by an earlier kubelet process is marked Failed
  (reason KubeletRestarted): a pod UID never runs twice.
* Root containers keep containerd's default capability set; the kubelet's keys, its
  kubeconfigs and other pods' volumes are masked inside each container's mount
  namespace. Non-root containers cannot read them anyway (root-only files).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import yaml

from lucid_devstack import kubelet_podman
from lucid_devstack.kube import KUBELET_CLIENT_CN, NODE_NAME, ControlPlane
from lucid_devstack.kubelet_api import Api, list_watch
from lucid_devstack.kubelet_node import NodeAgent, Scheduler
from lucid_devstack.kubelet_pod import TERMINAL, NodeContext, PodWorker, process_start
from lucid_devstack.kubelet_server import KubeletServer
from lucid_devstack.kubelet_spec import (
    NODE_DISK_FREE_FILE,
    SYSTEM_PATH,
    Tools,
    runtime_exposures,
    unmount_volumes,
    watch_node_disk,
)
from lucid_devstack.proc import Proc, StackError

log = logging.getLogger("lucid.kubelet")

SHUTDOWN_GRACE = 3.0


# --- teardown helpers ------------------------------------------------------------------


def pids_dir(workdir: Path) -> Path:
    return workdir / "kubelet" / "pids"


def group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = process_start(int(entry.name))
            if info is not None and info[1] == pgid:
                return True
    return False


def kill_leftovers(workdir: Path, timeout: float = 5.0) -> list[int]:
    """SIGKILL the process groups the kubelet recorded; returns the groups it signalled.

    For a kubelet that died without stopping its pods (SIGKILL, crash). A recorded group
    is only signalled while it provably is the one recorded: its leader still has the
    recorded start time, or the leader is gone but members remain (a group id cannot be
    reused while any member lives).
    """
    killed: list[int] = []
    directory = pids_dir(workdir)
    if not directory.is_dir():
        return killed
    for record in sorted(directory.iterdir()):
        if record.name.startswith("."):
            record.unlink(missing_ok=True)
            continue
        try:
            pgid_text, start_text = record.read_text().split()
            pgid, start = int(pgid_text), int(start_text)
        except (OSError, ValueError) as exc:
            log.warning("unreadable pid record %s: %s", record, exc)
            record.unlink(missing_ok=True)
            continue
        leader = process_start(pgid)
        ours = leader[0] == start if leader is not None else group_alive(pgid)
        if ours:
            try:
                os.killpg(pgid, signal.SIGKILL)
                killed.append(pgid)
            except ProcessLookupError:
                log.debug("process group %d ended meanwhile", pgid)
        record.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while killed and any(group_alive(g) for g in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


def remove_leftover_containers(workdir: Path) -> list[str]:
    """Remove the containers a kubelet of this workdir left (podman outlives its client)."""
    if shutil.which("podman", path=SYSTEM_PATH) is None:
        return []
    return kubelet_podman.remove_all(str(workdir))


class LocalKubelet:
    """The kubelet process for a started ControlPlane, with its log in workdir/logs."""

    def __init__(self, control_plane: ControlPlane, workdir: Path) -> None:
        self.control_plane = control_plane
        self.workdir = workdir
        self.proc: Proc | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / "kubelet.log"

    @property
    def pids_dir(self) -> Path:
        return pids_dir(self.workdir)

    def start(self, timeout: float = 60.0) -> LocalKubelet:
        ready = self.workdir / "kubelet" / "ready"
        ready.unlink(missing_ok=True)
        serving = self.control_plane.kubelet_serving
        self.proc = Proc("kubelet", [
            sys.executable, "-m", "lucid_devstack.kubelet",
            "--node-kubeconfig", str(self.control_plane.node_kubeconfig),
            "--scheduler-kubeconfig", str(self.control_plane.scheduler_kubeconfig),
            "--node-name", NODE_NAME,
            "--workdir", str(self.workdir),
            "--serving-cert", str(serving.cert), "--serving-key", str(serving.key),
            "--client-ca", str(self.control_plane.ca_cert),
            "--authorized-client", KUBELET_CLIENT_CN,
        ], self.log).start()
        self.proc.wait_until(ready.exists, timeout, "node registered and watches synced")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            # The kubelet stops its pods within SHUTDOWN_GRACE (+ SIGKILL) on SIGTERM.
            self.proc.stop(grace=SHUTDOWN_GRACE + 15)
        kill_leftovers(self.workdir)
        remove_leftover_containers(self.workdir)
        # A kubelet that crashed with pods running never unmounted their sized emptyDirs
        # (tmpfs in the host's namespace); with every pod gone, none is needed any more.
        left = unmount_volumes(self.workdir)
        if left:
            log.warning("unmounted %d volume(s) left by the kubelet: %s", len(left), left[:5])

    def set_node_disk_free(self, size: int | None) -> None:
        """Test knob: from now on, sized emptyDirs get at most `size` bytes (None: no cap).

        As on a node whose disk is fuller than a pod's sizeLimit: the pod sees ENOSPC
        below its limit. Volumes mounted before keep their size.
        """
        knob = self.workdir / "kubelet" / NODE_DISK_FREE_FILE
        if size is None:
            knob.unlink(missing_ok=True)
            return
        if size < 0:
            raise ValueError(f"free disk space cannot be negative: {size}")
        scratch = knob.with_name(f".{knob.name}.tmp")
        scratch.write_text(f"{size}\n")
        scratch.replace(knob)  # the kubelet never reads a half-written number

    def pod_log(self, namespace: str, name: str, container: str,
                uid: str | None = None) -> Path:
        """stdout+stderr of a pod's container; without `uid`, the newest pod of that name."""
        pods = self.workdir / "pods"
        if uid is not None:
            return pods / f"{namespace}_{name}_{uid}" / f"{container}.log"
        prefix = f"{namespace}_{name}_"
        candidates = [d for d in pods.glob(f"{prefix}*")
                      if d.is_dir() and "_" not in d.name[len(prefix):]]
        if not candidates:
            raise FileNotFoundError(f"no pod {namespace}/{name} ran on the local kubelet")
        newest = max(candidates, key=lambda d: d.stat().st_mtime)
        return newest / f"{container}.log"


# --- kubelet -----------------------------------------------------------------------------


class PodManager:
    """Starts one PodWorker per pod UID bound to this node, and never a second one."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, PodWorker] = {}
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.synced = threading.Event()

    def sync(self, pods: list[dict[str, Any]]) -> None:
        present = {pod["metadata"]["uid"] for pod in pods}
        for pod in pods:
            self._handle(pod)
        with self.lock:
            vanished = [uid for uid in self.workers if uid not in present]
            workers = [self.workers.pop(uid) for uid in vanished]
        for worker in workers:
            worker.gone()
        self.synced.set()

    def event(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            with self.lock:
                worker = self.workers.pop(pod["metadata"]["uid"], None)
            if worker is not None:
                worker.gone()
        else:
            self._handle(pod)

    def _handle(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            if worker is None:
                if uid in self.seen:
                    return
                self.seen.add(uid)
                # A directory from an earlier kubelet process means it already ran.
                previous = (self.ctx.pods_dir / f"{meta['namespace']}_{meta['name']}_{uid}")
                run = ((pod.get("status") or {}).get("phase") not in TERMINAL
                       and not meta.get("deletionTimestamp") and not previous.exists())
                worker = PodWorker(self.ctx, pod, run)
                self.workers[uid] = worker
                worker.thread.start()
                return
        worker.update(pod)

    def find(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of that pod; of two (a pod replaced under its name), the newer."""
        with self.lock:
            found = [w for w in self.workers.values()
                     if (w.namespace, w.name) == (namespace, name)]
        current = [w for w in found if not w.deleting]
        return (current or found or [None])[-1]

    def all(self) -> list[PodWorker]:
        with self.lock:
            return list(self.workers.values())

    def shutdown(self, grace: float) -> None:
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.shutdown(grace)
        for worker in workers:
            worker.thread.join(grace + 10)


def _credential_masks(kubeconfigs: list[Path], workdir: Path) -> tuple[tuple[Path, ...],
                                                                       tuple[Path, ...]]:
    """What containers must not see: kubeconfigs and key files, dirs holding keys, pod dirs."""
    files: list[Path] = []
    dirs: list[Path] = [workdir / "pods", workdir / "kubelet"]
    for kubeconfig in kubeconfigs:
        files.append(kubeconfig.resolve())
        config = yaml.safe_load(kubeconfig.read_text()) or {}
        for user in config.get("users") or []:
            for key in ("client-certificate", "client-key", "tokenFile"):
                value = (user.get("user") or {}).get(key)
                if value:
                    path = (kubeconfig.parent / value).resolve()
                    files.append(path)
                    if key == "client-key":
                        dirs.append(path.parent)
    return tuple(dict.fromkeys(dirs)), tuple(dict.fromkeys(files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lucid_devstack.kubelet",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--node-kubeconfig", type=Path, required=True)
    parser.add_argument("--scheduler-kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument("--workdir", type=Path, required=True)
    # The HTTPS server for kubectl logs (kubelet_server); without a certificate, none.
    parser.add_argument("--serving-cert", type=Path)
    parser.add_argument("--serving-key", type=Path)
    parser.add_argument("--client-ca", type=Path)
    parser.add_argument("--authorized-client", action="append", default=[],
                        help="common name of a client certificate that may read logs")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)

    stop = threading.Event()
    fatal: list[str] = []

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        del frame
        log.info("kubelet: %s received, stopping", signal.Signals(signum).name)
        stop.set()

    def on_thread_crash(crash: threading.ExceptHookArgs) -> None:
        # A dead thread would leave a half-working kubelet: fail loudly instead.
        log.error("kubelet: thread %s crashed", crash.thread.name if crash.thread else "?",
                  exc_info=(crash.exc_type, crash.exc_value, crash.exc_traceback))
        fatal.append(str(crash.exc_value))
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.excepthook = on_thread_crash

    workdir = args.workdir.resolve()
    (workdir / "kubelet").mkdir(parents=True, exist_ok=True)
    watch_node_disk(workdir / "kubelet" / NODE_DISK_FREE_FILE)
    ready = workdir / "kubelet" / "ready"
    ready.unlink(missing_ok=True)
    leftovers = kill_leftovers(workdir)
    if leftovers:
        log.warning("killed process groups left by an earlier kubelet: %s", leftovers)
    containers = remove_leftover_containers(workdir)
    if containers:
        log.warning("removed containers left by an earlier kubelet: %s", containers)
    try:
        tools = Tools.find()
    except StackError as exc:
        log.error("%s", exc)
        return 2
    node_api = Api(args.node_kubeconfig, "lucid-local-kubelet")
    scheduler_api = Api(args.scheduler_kubeconfig, "lucid-local-scheduler")
    mask_dirs, mask_files = _credential_masks(
        [args.node_kubeconfig, args.scheduler_kubeconfig], workdir)
    ctx = NodeContext(
        node_name=args.node_name, api=node_api, tools=tools, workdir=workdir,
        # The venv's console scripts (lucid-recorder, ...) must resolve first.
        base_path=f"{Path(sys.executable).parent}:{SYSTEM_PATH}",
        mask_dirs=mask_dirs, mask_files=mask_files,
        exposures=runtime_exposures({sys.prefix, sys.base_prefix, sys.exec_prefix,
                                     sys.base_exec_prefix}))

    pods = PodManager(ctx)
    server = None
    if args.serving_cert and args.serving_key and args.client_ca:
        server = KubeletServer(pods, args.serving_cert, args.serving_key, args.client_ca,
                               args.authorized_client, threading.Event()).start()
    agent = NodeAgent(node_api, args.node_name, stop, server.port if server else 0)
    agent.register()
    scheduler = Scheduler(scheduler_api, args.node_name, stop)
    threads = [
        threading.Thread(target=agent.run, name="node-agent", daemon=True),
        threading.Thread(target=scheduler.work, name="scheduler", daemon=True),
        threading.Thread(target=list_watch, name="scheduler-watch", daemon=True, args=(
            scheduler_api, "/api/v1/pods",
            {"fieldSelector": "spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed"},
            "scheduler pod watch", scheduler.sync, scheduler.event, stop)),
        threading.Thread(target=list_watch, name="kubelet-watch", daemon=True, args=(
            node_api, "/api/v1/pods", {"fieldSelector": f"spec.nodeName={args.node_name}"},
            "kubelet pod watch", pods.sync, pods.event, stop)),
    ]
    for thread in threads:
        thread.start()
    while not stop.is_set() and not (scheduler.synced.is_set() and pods.synced.is_set()):
        stop.wait(0.1)
    if not stop.is_set():
        ready.write_text(f"{os.getpid()}\n")
        log.info("kubelet: node %s ready (workdir %s)", args.node_name, workdir)
    while not stop.wait(1.0):
        pass
    if server is not None:
        server.shutdown()
    pods.shutdown(SHUTDOWN_GRACE)
    kill_leftovers(workdir)
    remove_leftover_containers(workdir)
    ready.unlink(missing_ok=True)
    log.info("kubelet: stopped")
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
