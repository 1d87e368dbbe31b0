"""One pod on the local kubelet: its containers as process groups, their probes, its status."""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lucid_devstack import kubelet_podman, podman
from lucid_devstack.kubelet_api import STRATEGIC, Api, ApiError, pod_path, rfc3339
from lucid_devstack.kubelet_spec import (
    CONFIG_ERROR,
    CREATING,
    HOST_IP,
    SYSTEM_PATH,
    VOLUME_SYNC_SECONDS,
    ConfigError,
    Exposure,
    Identity,
    Mount,
    ObjectCache,
    ObjectReader,
    Tools,
    Unsupported,
    VolumeBuilder,
    Volumes,
    check_supported,
    container_env,
    container_mounts,
    env_script,
    exec_probe_argv,
    expand,
    identity,
    pod_label,
    stage1_script,
    unmount_volumes,
    wrapper_argv,
)
from lucid_devstack.proc import StackError

log = logging.getLogger("lucid.kubelet")

# The real kubelet backs off from 10 s to 5 min; tests cannot wait that long.
BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
# Retries of config and volume errors: fast at first (the Node authorizer and the
# NodeRestriction admission learn of a new binding a moment after the kubelet does),
# then every few seconds.
CONFIG_RETRY_FIRST = 0.25
CONFIG_RETRY_MAX = 3.0
TICK = 0.25
TERMINAL = ("Succeeded", "Failed")
# One TTL cache of the Secrets and ConfigMaps that volume re-syncs read, for the node.
SHARED_OBJECTS = ObjectCache(ttl=VOLUME_SYNC_SECONDS)


@dataclass
class NodeContext:
    """What every pod worker shares."""

    node_name: str
    api: Api
    tools: Tools
    workdir: Path
    base_path: str
    mask_dirs: tuple[Path, ...] = ()
    mask_files: tuple[Path, ...] = ()
    exposures: tuple[Exposure, ...] = ()

    @property
    def pods_dir(self) -> Path:
        return self.workdir / "pods"

    @property
    def pids_dir(self) -> Path:
        return self.workdir / "kubelet" / "pids"


def config_retry(failures: int) -> float:
    return min(CONFIG_RETRY_FIRST * 2 ** (failures - 1), CONFIG_RETRY_MAX)


# --- the pids directory: how a teardown finds processes of a SIGKILLed kubelet ---------


def process_start(pid: int) -> tuple[int, int] | None:
    """(start time in clock ticks, process group) of `pid`, or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses; the fields after the last ')' do not.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19]), int(fields[2])


def record_pid(pids_dir: Path, key: str, pgid: int) -> None:
    start = process_start(pgid)
    pids_dir.mkdir(parents=True, exist_ok=True)
    scratch = pids_dir / f".{key}.tmp"
    scratch.write_text(f"{pgid} {start[0] if start else 0}\n")
    os.replace(scratch, pids_dir / key)


def forget_pid(pids_dir: Path, key: str) -> None:
    (pids_dir / key).unlink(missing_ok=True)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        log.debug("process group %d already gone", pgid)


# --- probes ------------------------------------------------------------------------------


@dataclass
class Probe:
    spec: dict[str, Any]
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    passed: bool = False

    def reset(self, started: float) -> None:
        self.successes = self.failures = 0
        self.passed = False
        self.next_at = started + float(self.spec.get("initialDelaySeconds") or 0)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, now: float) -> None:
        """Apply one result; `passed` flips only after the configured thresholds."""
        self.next_at = now + float(self.spec.get("periodSeconds") or 10)
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold") or 1):
                self.passed = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failed_out:
                self.passed = False

    @property
    def failed_out(self) -> bool:
        return self.failures >= int(self.spec.get("failureThreshold") or 3)


def _resolve_port(container: dict[str, Any], port: Any) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"no port named {port!r} in container {container['name']!r}")


def http_probe(container: dict[str, Any], spec: dict[str, Any], timeout: float) -> tuple[bool, str]:
    host = spec.get("host") or HOST_IP
    port = _resolve_port(container, spec["port"])
    conn: http.client.HTTPConnection
    if (spec.get("scheme") or "HTTP").upper() == "HTTPS":
        # Like the kubelet: HTTPS probes do not verify the serving certificate.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"User-Agent": "kube-probe/1.35", "Accept": "*/*"}
    headers.update({h["name"]: h["value"] for h in spec.get("httpHeaders") or []})
    try:
        conn.request("GET", spec.get("path") or "/", headers=headers)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"Get {host}:{port}: {exc}"
    finally:
        conn.close()
    return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"


def tcp_probe(container: dict[str, Any], spec: dict[str, Any], timeout: float) -> tuple[bool, str]:
    host = spec.get("host") or HOST_IP
    port = _resolve_port(container, spec["port"])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: {exc}"


# --- containers --------------------------------------------------------------------------


def _memfd(content: bytes) -> int:
    fd = os.memfd_create("lucid-container-env", os.MFD_CLOEXEC)
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _log_tail(path: Path, offset: int) -> str:
    """The kubelet's FallbackToLogsOnError message: last 80 lines, at most 2048 bytes."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return b"\n".join(data.splitlines()[-80:])[-2048:].decode("utf-8", errors="replace")


@dataclass
class Container:
    worker: PodWorker
    spec: dict[str, Any]
    state: str = "waiting"  # waiting | running | terminated (for good)
    reason: str = "ContainerCreating"
    message: str = ""
    popen: subprocess.Popen[bytes] | None = None
    pgid: int = 0
    started_at: str = ""
    started_mono: float = 0.0
    terminated: dict[str, Any] | None = None
    last_state: dict[str, Any] | None = None
    restart_count: int = 0
    config_failures: int = 0
    next_start: float = 0.0
    backoff: float = BACKOFF_START
    kill_deadline: float | None = None
    log_offset: int = 0
    # Where each run's output begins in log_path: `kubectl logs --previous` (kubelet_server).
    run_offsets: list[int] = field(default_factory=list)
    ident: Identity | None = None
    env_input: bytes = b""
    probes: dict[str, Probe] = field(default_factory=dict)
    # The podman container of this run ("" in process mode).
    podman_name: str = ""

    def __post_init__(self) -> None:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if self.spec.get(kind):
                self.probes[kind] = Probe(self.spec[kind])

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def what(self) -> str:
        return f"container {self.name} of pod {self.worker.ref}"

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    @property
    def in_container(self) -> bool:
        return not kubelet_podman.runs_as_process(self.image)

    @property
    def container_id(self) -> str:
        if self.podman_name:
            return f"{kubelet_podman.CONTAINER_ID_PREFIX}{self.podman_name}"
        return f"local://{self.pgid}"

    @property
    def log_path(self) -> Path:
        return self.worker.dir / f"{self.name}.log"

    @property
    def pid_key(self) -> str:
        return f"{self.worker.uid}_{self.name}"

    @property
    def started(self) -> bool:
        startup = self.probes.get("startupProbe")
        return self.state == "running" and (startup is None or startup.passed)

    @property
    def ready(self) -> bool:
        readiness = self.probes.get("readinessProbe")
        return self.started and (readiness is None or readiness.passed)

    def wait(self, reason: str, message: str) -> None:
        if (reason, message) != (self.reason, self.message):
            log.info("%s waiting: %s: %s", self.what, reason, message)
        self.state, self.reason, self.message = "waiting", reason, message

    def step(self, now: float, deleting: bool) -> None:
        if self.state == "running":
            if self._reap(now, deleting):
                return
            if self.kill_deadline is not None and now >= self.kill_deadline:
                log.info("%s did not stop in time: SIGKILL", self.what)
                if self.podman_name:
                    kubelet_podman.kill(self.podman_name)
                signal_group(self.pgid, signal.SIGKILL)
                self.kill_deadline = float("inf")
            elif not deleting and self.kill_deadline is None:
                self._probe(now)
        elif self.state == "waiting" and not deleting and now >= self.next_start:
            self._start(now, deleting)

    def _reap(self, now: float, deleting: bool) -> bool:
        """Handle an exit; True when the process has ended."""
        assert self.popen is not None
        # WNOWAIT leaves the leader a zombie, so its pid (the group id) cannot be
        # reused while the stragglers of its group are SIGKILLed.
        try:
            exited = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            log.warning("%s: process %d was reaped elsewhere", self.what, self.popen.pid)
            exited = None
            self.popen.poll()  # sets returncode (0) for a child that is no longer ours
        if exited is None and self.popen.returncode is None:
            return False
        # A container's processes end with it, as in a container runtime's cgroup.
        signal_group(self.pgid, signal.SIGKILL)
        code = self.popen.wait()
        if self.podman_name:
            # podman run ends with its container, unless podman itself was killed.
            kubelet_podman.remove(self.podman_name)
        forget_pid(self.worker.ctx.pids_dir, self.pid_key)
        exit_code = 128 - code if code < 0 else code
        term: dict[str, Any] = {
            "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": self.started_at, "finishedAt": rfc3339(),
            "containerID": self.container_id,
        }
        if self.podman_name and exit_code == kubelet_podman.PODMAN_FAILED:
            # podman's own failure (bad mount, runtime error) before the program ran.
            term["reason"] = "StartError"
            term["message"] = _log_tail(self.log_path, self.log_offset)
        if exit_code != 0 and self.spec.get("terminationMessagePolicy") == \
                "FallbackToLogsOnError":
            term["message"] = _log_tail(self.log_path, self.log_offset)
        log.info("%s exited with code %d", self.what, exit_code)
        self._after_exit(term, now, deleting)
        return True

    def _after_exit(self, term: dict[str, Any], now: float, deleting: bool) -> None:
        self.popen, self.kill_deadline = None, None
        policy = self.worker.pod["spec"].get("restartPolicy") or "Always"
        restart = not deleting and not self.worker.stopping and (
            policy == "Always" or (policy == "OnFailure" and term["exitCode"] != 0))
        if not restart:
            self.state, self.terminated = "terminated", term
            return
        if self.started_mono and now - self.started_mono > 2 * BACKOFF_CAP:
            self.backoff = BACKOFF_START  # it ran fine for a while: forget old crashes
        delay, self.backoff = self.backoff, min(self.backoff * 2, BACKOFF_CAP)
        self.last_state = term
        self.restart_count += 1
        self.next_start = now + delay
        self.state, self.reason = "waiting", "CrashLoopBackOff"
        self.message = (f"back-off {delay:.0f}s restarting failed container={self.name} "
                        f"pod={pod_label(self.worker.pod)}")
        log.info("%s restarting in %.0fs (restart %d)", self.what, delay, self.restart_count)

    def _start(self, now: float, deleting: bool) -> None:
        worker = self.worker
        if worker.volumes is None:
            return
        pod, ctx = worker.pod, worker.ctx
        try:
            image_uid = self._image_uid() if self.in_container else None
            ident = identity(pod, self.spec, image_uid)
            env = container_env(pod, self.spec, ObjectReader(ctx.api, worker.namespace),
                                worker.base_env(self.in_container))
        except ConfigError as exc:
            self.wait(exc.reason, exc.message)
            self.config_failures += 1
            self.next_start = now + config_retry(self.config_failures)
            return
        self.config_failures = 0
        entrypoint = [expand(a, env) for a in self.spec.get("command") or []]
        args = [expand(a, env) for a in self.spec.get("args") or []]
        command = entrypoint + args
        if not self.in_container and "/" not in command[0] and \
                shutil.which(command[0], path=env.get("PATH")) is None:
            self._start_failed(f'exec: "{command[0]}": executable file not found in $PATH',
                               now, deleting)
            return
        try:
            mounts = container_mounts(self.spec, worker.volumes.dirs, env)
        except OSError as exc:
            self.wait(CONFIG_ERROR, f"failed to prepare subPath: {exc}")
            self.config_failures += 1
            self.next_start = now + config_retry(self.config_failures)
            return
        if self.in_container:
            self._start_container(now, deleting, ident, env, entrypoint, args, mounts)
            return
        stage1 = stage1_script(ctx.tools, mounts, ctx.mask_dirs, ctx.mask_files, ident,
                               self.spec.get("workingDir"), ctx.exposures)
        self.env_input, skipped = env_script(env)
        if skipped:
            log.warning("%s: env vars skipped (not shell variable names): %s", self.what,
                        ", ".join(skipped))
        stdin = _memfd(self.env_input)
        try:
            with self.log_path.open("ab") as out:
                self.log_offset = out.tell()
                self.popen = subprocess.Popen(
                    wrapper_argv(ctx.tools, stage1, command),
                    stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                    # The root stages get a fixed environment; the container's own
                    # arrives on stdin and is applied only after privileges are dropped.
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                    cwd="/", start_new_session=True, close_fds=True,
                )
        except OSError as exc:
            self._start_failed(f"starting the wrapper: {exc}", now, deleting)
            return
        finally:
            os.close(stdin)
        self.podman_name = ""
        self._running(now, ident)

    def _image_uid(self) -> int | None:
        """The image's numeric USER; ConfigError while the image is missing or unusable."""
        if not podman.image_exists(self.image):
            raise ConfigError(kubelet_podman.IMAGE_NEVER_PULL,
                              f'Container image "{self.image}" is not present with pull '
                              "policy of Never")
        try:
            return kubelet_podman.image_uid(self.image)
        except ValueError as exc:
            raise ConfigError(CONFIG_ERROR, str(exc)) from None

    def _start_container(self, now: float, deleting: bool, ident: Identity,
                         env: dict[str, str], entrypoint: list[str], args: list[str],
                         mounts: list[Mount]) -> None:
        worker, ctx = self.worker, self.worker.ctx
        name = kubelet_podman.container_name(worker.pod, self.name, self.restart_count)
        try:
            kubelet_podman.check_env_names(env)
            argv = kubelet_podman.run_argv(
                name=name, image=self.image, label=str(ctx.workdir), command=entrypoint or None,
                args=args, env_names=env, mounts=mounts, ident=ident,
                working_dir=self.spec.get("workingDir"),
                resources=self.spec.get("resources") or {})
        except (StackError, ValueError) as exc:
            self._start_failed(str(exc), now, deleting)
            return
        # A container of that name left by a killed podman client would block this one.
        kubelet_podman.remove(name)
        try:
            with self.log_path.open("ab") as out:
                self.log_offset = out.tell()
                self.popen = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    # The values of the container's env reach podman only here, never argv.
                    env={"PATH": SYSTEM_PATH, **env}, cwd="/", start_new_session=True,
                    close_fds=True)
        except OSError as exc:
            self._start_failed(f"starting podman: {exc}", now, deleting)
            return
        self.podman_name = name
        self.env_input = b""
        self._running(now, ident)

    def _running(self, now: float, ident: Identity) -> None:
        ctx = self.worker.ctx
        assert self.popen is not None
        self.run_offsets.append(self.log_offset)
        self.pgid = self.popen.pid
        record_pid(ctx.pids_dir, self.pid_key, self.pgid)
        self.ident = ident
        self.state, self.reason, self.message = "running", "", ""
        self.started_at, self.started_mono = rfc3339(), now
        for probe in self.probes.values():
            probe.reset(now)
        log.info("%s started (%s)", self.what, self.container_id)

    def _start_failed(self, message: str, now: float, deleting: bool) -> None:
        log.warning("%s failed to start: %s", self.what, message)
        stamp = rfc3339()
        self._after_exit({"exitCode": 128, "reason": "StartError", "message": message,
                          "startedAt": stamp, "finishedAt": stamp}, now, deleting)

    def terminate(self, grace: float, why: str) -> None:
        """SIGTERM now, SIGKILL after `grace`; a later, shorter grace wins (like the kubelet)."""
        if self.state != "running":
            return
        deadline = time.monotonic() + max(grace, 0.0)
        if self.kill_deadline is None:
            log.info("%s stopping (%s, grace %.0fs)", self.what, why, grace)
            signal_group(self.pgid, signal.SIGTERM)
            self.kill_deadline = deadline
        else:
            self.kill_deadline = min(self.kill_deadline, deadline)

    def _probe(self, now: float) -> None:
        startup = self.probes.get("startupProbe")
        if startup is not None and not startup.passed:
            if startup.due(now):
                self._run_probe("startupProbe", startup)
            return
        was_ready = self.ready
        for kind in ("livenessProbe", "readinessProbe"):
            probe = self.probes.get(kind)
            if probe is not None and probe.due(now) and self.kill_deadline is None:
                self._run_probe(kind, probe)
        if self.ready != was_ready:
            log.info("%s is %s", self.what, "ready" if self.ready else "not ready")

    def _run_probe(self, kind: str, probe: Probe) -> None:
        spec = probe.spec
        timeout = float(spec.get("timeoutSeconds") or 1)
        if "httpGet" in spec:
            ok, detail = http_probe(self.spec, spec["httpGet"], timeout)
        elif "tcpSocket" in spec:
            ok, detail = tcp_probe(self.spec, spec["tcpSocket"], timeout)
        else:
            ok, detail = self._exec_probe(spec["exec"].get("command") or [], timeout)
        probe.record(ok, time.monotonic())
        if ok:
            return
        # One line when a probe starts failing and one when it has failed out, not one
        # per period: a never-ready container would flood the log.
        threshold = int(spec.get("failureThreshold") or 3)
        if probe.failures in (1, threshold):
            log.info("%s: %s failed (%d in a row): %s", self.what, kind, probe.failures, detail)
        if kind != "readinessProbe" and probe.failed_out:
            grace = spec.get("terminationGracePeriodSeconds")
            if grace is None:
                grace = self.worker.pod["spec"].get("terminationGracePeriodSeconds", 30)
            self.terminate(float(grace), f"failed {kind}, will be restarted")

    def _exec_probe(self, command: list[str], timeout: float) -> tuple[bool, str]:
        assert self.ident is not None
        if self.podman_name:
            argv = kubelet_podman.exec_argv(self.podman_name, self.ident, command)
        else:
            argv = exec_probe_argv(self.worker.ctx.tools, self.pgid, self.ident, command)
        stdin = _memfd(self.env_input)
        try:
            done = subprocess.run(
                argv, stdin=stdin, capture_output=True, timeout=timeout, check=False,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/",
            )
        except subprocess.TimeoutExpired:
            return False, f"command timed out after {timeout:.0f}s"
        finally:
            os.close(stdin)
        output = (done.stdout + done.stderr)[-256:].decode("utf-8", errors="replace")
        return done.returncode == 0, f"exit code {done.returncode}: {output.strip()}"

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name, "image": self.spec.get("image", ""), "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count, "started": self.started,
            "lastState": {"terminated": self.last_state} if self.last_state else {},
        }
        if self.state == "running":
            status["state"] = {"running": {"startedAt": self.started_at}}
            status["containerID"] = self.container_id
        elif self.state == "terminated" and self.terminated is not None:
            status["state"] = {"terminated": self.terminated}
            if "containerID" in self.terminated:
                status["containerID"] = self.terminated["containerID"]
        else:
            waiting = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            status["state"] = {"waiting": waiting}
        return status


# --- pods --------------------------------------------------------------------------------


class PodWorker:
    """Runs one pod UID from admission to finalization, on its own thread."""

    def __init__(self, ctx: NodeContext, pod: dict[str, Any], run: bool) -> None:
        meta = pod["metadata"]
        self.ctx = ctx
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.ref = f"{self.namespace}/{self.name}"
        self.dir = ctx.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        self.run_containers = run
        self._pod = pod
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._gone = False
        self._shutdown_grace: float | None = None
        self.containers: list[Container] = []
        self.volumes: Volumes | None = None
        self.volumes_retry_at = 0.0
        self.volume_failures = 0
        self.failure: tuple[str, str] | None = None
        self.conditions: dict[str, dict[str, Any]] = {}
        self.start_time = rfc3339()
        self.posted: dict[str, Any] | None = None
        self.post_retry_at = 0.0
        self.post_failures = 0
        self.thread = threading.Thread(target=self._main, name=f"pod {self.ref}", daemon=True)

    # Called from the watch thread.
    def update(self, pod: dict[str, Any]) -> None:
        with self._lock:
            self._pod = pod
        self._wake.set()

    def gone(self) -> None:
        self._gone = True
        self._wake.set()

    def shutdown(self, grace: float) -> None:
        self._shutdown_grace = grace
        self._wake.set()

    @property
    def pod(self) -> dict[str, Any]:
        with self._lock:
            return self._pod

    @property
    def stopping(self) -> bool:
        return self._gone or self._shutdown_grace is not None

    @property
    def deleting(self) -> bool:
        return self.pod["metadata"].get("deletionTimestamp") is not None

    def base_env(self, in_container: bool = False) -> dict[str, str]:
        """What every container's env starts with; a container keeps its image's PATH."""
        port = str(self.ctx.api.port)
        path = {} if in_container else {"PATH": self.ctx.base_path}
        return {
            **path,
            "HOSTNAME": self.name,
            # The in-cluster address of the API: the kubernetes Service, here the host.
            "KUBERNETES_SERVICE_HOST": HOST_IP,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{HOST_IP}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{HOST_IP}:{port}",
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port,
            f"KUBERNETES_PORT_{port}_TCP_ADDR": HOST_IP,
        }

    def _main(self) -> None:
        if self.run_containers:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._run()
        else:
            self._not_run()
        self._remove_volumes()

    def _run(self) -> None:
        try:
            check_supported(self.pod)
        except Unsupported as exc:
            self._fail(str(exc))
            self._idle()
            return
        self.containers = [Container(self, spec) for spec in self.pod["spec"]["containers"]]
        log.info("pod %s (%s) admitted", self.ref, self.uid)
        while True:
            if self.stopping:
                self._stop_all(2.0 if self._gone else float(self._shutdown_grace or 0))
                log.info("pod %s %s", self.ref, "gone" if self._gone else "stopped: kubelet exit")
                return
            deleting = self.deleting
            now = time.monotonic()
            if deleting:
                meta, spec = self.pod["metadata"], self.pod["spec"]
                grace = meta.get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = spec.get("terminationGracePeriodSeconds", 30)
                for container in self.containers:
                    container.terminate(float(grace), "pod deleted")
            try:
                if not deleting:
                    self._ensure_volumes(now)
                for container in self.containers:
                    container.step(now, deleting)
            except Unsupported as exc:
                self._stop_all(2.0)
                self._fail(str(exc))
                self._idle()
                return
            if deleting and not any(c.state == "running" for c in self.containers):
                self._post_status(force=True)
                if self._finalize():
                    return
            else:
                self._post_status()
            if self._phase() in TERMINAL and self.posted is not None and \
                    self.posted.get("phase") in TERMINAL:
                log.info("pod %s finished: %s", self.ref, self._phase())
                self._remove_volumes()
                self._idle()
                return
            self._wake.wait(TICK)
            self._wake.clear()

    def _ensure_volumes(self, now: float) -> None:
        builder = VolumeBuilder(self.pod, ObjectReader(self.ctx.api, self.namespace),
                                self.ctx.api, self.dir / "volumes")
        try:
            self._build_volumes(builder, now)
        except OSError as exc:
            # A local disk problem is reported like a mount failure, not a kubelet crash.
            self._volume_error(f"MountVolume.SetUp failed: {exc}", now)
        except ConfigError as exc:
            self._volume_error(exc.message, now)

    def _build_volumes(self, builder: VolumeBuilder, now: float) -> None:
        if self.volumes is None and now >= self.volumes_retry_at:
            self.volumes = builder.build()
            self.volumes.resync_at = now + VOLUME_SYNC_SECONDS
        elif self.volumes is not None and time.time() >= self.volumes.refresh_at:
            refreshed = builder.build(tokens_only=True)
            self.volumes.refresh_at = refreshed.refresh_at
            log.info("pod %s: service account tokens refreshed", self.ref)
        elif self.volumes is not None and now >= self.volumes.resync_at:
            # Like a real kubelet's sync loop: a changed Secret or ConfigMap reaches the
            # running containers through their (bind-mounted) volume directories.
            self.volumes.resync_at = now + VOLUME_SYNC_SECONDS
            builder.reader = ObjectReader(self.ctx.api, self.namespace, shared=SHARED_OBJECTS)
            try:
                changed = builder.resync()
            except ConfigError as exc:
                log.warning("pod %s: volume re-sync failed, kept the old content, retrying "
                            "in %.0fs: %s", self.ref, VOLUME_SYNC_SECONDS, exc.message)
                return
            if changed:
                log.info("pod %s: volumes %s updated", self.ref, ", ".join(changed))

    def _volume_error(self, message: str, now: float) -> None:
        if self.volumes is None:
            self.volume_failures += 1
            self.volumes_retry_at = now + config_retry(self.volume_failures)
            for container in self.containers:
                if container.state == "waiting" and not container.last_state:
                    container.wait(CREATING, message)
        else:
            log.warning("pod %s: token refresh failed, retrying in 10s: %s", self.ref, message)
            self.volumes.refresh_at = time.time() + 10

    def _stop_all(self, grace: float) -> None:
        for container in self.containers:
            container.terminate(grace, "pod gone" if self._gone else "kubelet stopping")
        while any(c.state == "running" for c in self.containers):
            for container in self.containers:
                container.step(time.monotonic(), deleting=True)
            time.sleep(0.05)

    def _phase(self) -> str:
        """The kubelet's getPhase, for pods without init containers."""
        if self.failure:
            return "Failed"
        waiting = running = stopped = succeeded = 0
        for c in self.containers:
            if c.state == "running":
                running += 1
            elif c.state == "terminated":
                stopped += 1
                succeeded += int(bool(c.terminated) and c.terminated["exitCode"] == 0)
            elif c.last_state:
                stopped += 1  # between restarts
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped and all(c.state == "terminated" for c in self.containers):
            return "Succeeded" if succeeded == len(self.containers) else "Failed"
        return "Running" if stopped else "Pending"

    def _condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> dict:
        status = "True" if ok else "False"
        previous = self.conditions.get(kind)
        changed = previous is None or previous["status"] != status
        condition: dict[str, Any] = {
            "type": kind, "status": status, "lastProbeTime": None,
            "lastTransitionTime": rfc3339() if changed else previous["lastTransitionTime"],
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        self.conditions[kind] = condition
        return condition

    def _status(self) -> dict[str, Any]:
        phase = self._phase()
        unready = [c.name for c in self.containers if not c.ready]
        if phase in TERMINAL:
            ready_args: tuple[bool, str, str] = (False, "PodCompleted", "")
        elif unready:
            ready_args = (False, "ContainersNotReady",
                          f"containers with unready status: [{' '.join(unready)}]")
        else:
            ready_args = (True, "", "")
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [
                self._condition("PodReadyToStartContainers", self.volumes is not None),
                self._condition("Initialized", True),
                self._condition("ContainersReady", *ready_args),
                self._condition("Ready", *ready_args),
                self._condition("PodScheduled", True),
            ],
            "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}],
            "podIP": HOST_IP, "podIPs": [{"ip": HOST_IP}],
            "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.failure:
            status["reason"], status["message"] = self.failure
        return status

    def _post_status(self, force: bool = False) -> None:
        status = self._status()
        if status == self.posted or (not force and time.monotonic() < self.post_retry_at):
            return
        body = {"metadata": {"uid": self.uid}, "status": status}
        try:
            self.ctx.api.call("PATCH", pod_path(self.namespace, self.name, "status"),
                              body=body, content_type=STRATEGIC)
        except ApiError as exc:
            if exc.status in (404, 409):
                log.info("pod %s: status not written, the pod is gone (%s)", self.ref, exc)
                self.posted = status  # nothing left to update
                return
            self.post_failures += 1
            delay = min(0.5 * 2 ** self.post_failures, 10.0)
            self.post_retry_at = time.monotonic() + delay
            log.warning("pod %s: status update failed, retrying in %.1fs: %s", self.ref,
                        delay, exc)
            return
        if status["phase"] != (self.posted or {}).get("phase"):
            log.info("pod %s is %s", self.ref, status["phase"])
        self.posted, self.post_failures = status, 0

    def _fail(self, message: str, reason: str = "UnsupportedByLocalKubelet") -> None:
        log.warning("pod %s failed: %s", self.ref, message)
        self.failure = (reason, message)
        while True:
            self._post_status()
            if self.posted is not None or self.stopping or self.deleting:
                return
            self._wake.wait(1.0)
            self._wake.clear()

    def _not_run(self) -> None:
        """A pod this kubelet must not start: already finished, or run by an earlier kubelet."""
        pod = self.pod
        phase = (pod.get("status") or {}).get("phase")
        if phase not in TERMINAL and not self.deleting:
            self.containers = [Container(self, spec) for spec in pod["spec"]["containers"]]
            stamp = rfc3339()
            for container in self.containers:
                # The kubelet's words for a container that vanished with its node.
                container.state, container.terminated = "terminated", {
                    "exitCode": 137, "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was "
                               "terminated", "startedAt": stamp, "finishedAt": stamp}
            self._fail("the local kubelet restarted; it never runs a pod twice",
                       reason="KubeletRestarted")
        self._idle()

    def _idle(self) -> None:
        """Nothing runs any more: wait for the deletion, then finalize it."""
        while not self.stopping:
            if self.deleting and self._finalize():
                return
            self._wake.wait(5.0)
            self._wake.clear()

    def _finalize(self) -> bool:
        """Remove the pod object for good, as the kubelet does once its containers are down."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid}}
        try:
            self.ctx.api.call("DELETE", pod_path(self.namespace, self.name),
                              query={"gracePeriodSeconds": "0"}, body=body)
        except ApiError as exc:
            if exc.status in (404, 409):
                return True  # already gone, or the name now belongs to a newer pod
            log.warning("pod %s: final delete failed, retrying: %s", self.ref, exc)
            self._wake.wait(1.0)
            return False
        log.info("pod %s (%s) deleted", self.ref, self.uid)
        return True

    def _remove_volumes(self) -> None:
        """Secret material must not outlive the pod's processes."""
        volumes = self.dir / "volumes"
        if volumes.exists():
            try:
                # Size-limited emptyDirs are tmpfs mounts: rmtree cannot remove those.
                unmount_volumes(volumes)
                shutil.rmtree(volumes)
            except OSError as exc:
                log.warning("pod %s: cannot remove %s: %s", self.ref, volumes, exc)
