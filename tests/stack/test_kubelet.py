"""The local kubelet runs pods as processes (process mode) the way a kubelet would, through the
real API; tests/stack/test_kubelet_containers.py covers the container mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config

from lucid_devstack.kube import NODE_NAME, ControlPlane
from lucid_devstack.kubelet import LocalKubelet, group_alive, kill_leftovers
from lucid_devstack.kubelet_spec import VOLUME_SYNC_SECONDS

pytestmark = pytest.mark.stack

NAMESPACE = "kubelet-test"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
SECRET_GREETING = "hello-from-a-secret-7f3a"
SECRET_TOKEN = "tok-4242-do-not-log"

T = TypeVar("T")


@dataclass
class Cluster:
    control_plane: ControlPlane
    kubelet: LocalKubelet
    core: client.CoreV1Api
    rbac: client.RbacAuthorizationV1Api
    pgids: set[int] = field(default_factory=set)

    def kubectl(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.control_plane.kubeconfig), *args],
            capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def create_pod(self, name: str, containers: list[dict[str, Any]], **spec: Any) -> None:
        self.core.create_namespaced_pod(NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": containers, **spec}})

    def pod(self, name: str) -> client.V1Pod:
        pod = self.core.read_namespaced_pod(name, NAMESPACE)
        for status in pod.status.container_statuses or []:
            if (status.container_id or "").startswith("local://"):
                self.pgids.add(int(status.container_id.removeprefix("local://")))
        return pod

    def wait_pod(self, name: str, check: Callable[[client.V1Pod], bool], what: str,
                 timeout: float = 30) -> client.V1Pod:
        return wait_for(lambda: (lambda p: p if check(p) else None)(self.pod(name)),
                        timeout, f"pod {name}: {what}", self)

    def log(self, name: str) -> str:
        return self.kubelet.pod_log(NAMESPACE, name, "main").read_text()

    def diagnostics(self) -> str:
        return self.kubelet.log.read_text()[-4000:]


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             cluster: Cluster | None = None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.2)
    extra = f"\nkubelet log tail:\n{cluster.diagnostics()}" if cluster else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("kubelet-stack")
    control_plane = ControlPlane(workdir / "kube")
    kubelet = LocalKubelet(control_plane, workdir / "kubelet")
    try:
        control_plane.start()
        kubelet.start()
        api = new_client_from_config(config_file=str(control_plane.kubeconfig))
        running = Cluster(control_plane, kubelet, client.CoreV1Api(api),
                          client.RbacAuthorizationV1Api(api))
        running.core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_for(lambda: _has_default_account(running.core), 60, "default ServiceAccount")
        yield running
    finally:
        kubelet.stop()
        control_plane.stop()
    assert kubelet.proc is not None and kubelet.proc.popen is not None
    assert kubelet.proc.popen.poll() is not None, "kubelet still running"
    assert not any(p.running for p in control_plane.procs.values())
    leftovers = sorted(g for g in running.pgids if group_alive(g))
    assert not leftovers, f"pod process groups left running: {leftovers}"
    assert not any(kubelet.pids_dir.iterdir()), "pid records left behind"


def _has_default_account(core: client.CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_node_is_registered_ready_and_leased(cluster: Cluster):
    node = cluster.core.read_node(NODE_NAME)
    assert node.metadata.labels["kubernetes.io/hostname"] == NODE_NAME
    assert node.metadata.labels["lucid.dev/local-kubelet"] == "true"
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in [
        a.to_dict() for a in node.status.addresses]
    lease = client.CoordinationV1Api(cluster.core.api_client).read_namespaced_lease(
        NODE_NAME, "kube-node-lease")
    assert lease.spec.holder_identity == NODE_NAME


def test_failed_pod_with_secret_env_and_volume(cluster: Cluster):
    cluster.core.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": "greeting"},
        "stringData": {"greeting": SECRET_GREETING, "token": SECRET_TOKEN}})
    cluster.create_pod("exit-three", [{
        "name": "main", "image": "process.local/unused",
        "command": ["sh", "-c", "echo $GREETING; echo $LITERAL; cat /etc/lucid-secret/token; "
                                "echo; exit 3"],
        "env": [
            {"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "greeting",
                                                                "key": "greeting"}}},
            {"name": "LITERAL", "value": "literal-$(GREETING)"},
        ],
        "volumeMounts": [{"name": "secret", "mountPath": "/etc/lucid-secret",
                          "readOnly": True}],
    }], restartPolicy="Never", volumes=[{"name": "secret", "secret": {"secretName": "greeting"}}])

    pod = cluster.wait_pod("exit-three", lambda p: p.status.phase == "Failed", "phase Failed")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    log = cluster.log("exit-three")
    assert SECRET_GREETING in log
    assert f"literal-{SECRET_GREETING}" in log
    assert SECRET_TOKEN in log
    kubelet_log = cluster.kubelet.log.read_text()
    assert SECRET_GREETING not in kubelet_log and SECRET_TOKEN not in kubelet_log


def test_an_updated_secret_reaches_a_running_pod_whole(cluster: Cluster):
    """A changed Secret is re-synced into the mounted volume, as a kubelet does.

    The container reads the file over and over; every read is the old value or the
    new one in full (the ..data swap), never a mix or an empty file.
    """
    old, new = "rotating-old-" + "a" * 4000, "rotating-new-" + "b" * 4000
    cluster.core.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": "rotating"}, "stringData": {"key": old, "dropped": "x"}})
    cluster.create_pod("rotation", [{
        "name": "main", "image": "process.local/unused",
        "command": ["sh", "-c", "while true; do echo \"read:$(cat /etc/rot/key)\"; "
                                "ls /etc/rot; sleep 0.1; done"],
        "volumeMounts": [{"name": "rot", "mountPath": "/etc/rot", "readOnly": True}],
    }], volumes=[{"name": "rot", "secret": {"secretName": "rotating"}}])
    cluster.wait_pod("rotation", lambda p: p.status.phase == "Running", "Running")
    wait_for(lambda: f"read:{old}" in cluster.log("rotation"), 30, "the first value")
    cluster.core.patch_namespaced_secret("rotating", NAMESPACE,
                                         {"stringData": {"key": new}, "data": {"dropped": None}})
    updated = time.monotonic()
    wait_for(lambda: f"read:{new}" in cluster.log("rotation"), 2 * VOLUME_SYNC_SECONDS + 10,
             "the updated value in the running container", cluster)
    took = time.monotonic() - updated
    reads = [line for line in cluster.log("rotation").splitlines() if line.startswith("read:")]
    assert set(reads) == {f"read:{old}", f"read:{new}"}, {r[:20] for r in reads}
    after = cluster.log("rotation").rsplit(f"read:{new}", 1)[1]
    assert "dropped" not in after.splitlines()[1:3], after[:200]  # a removed key leaves
    assert "volumes rot updated" in cluster.kubelet.log.read_text()
    print(f"secret update visible in the container after {took:.1f}s "
          f"(sync period {VOLUME_SYNC_SECONDS:g}s)")
    cluster.kubectl("delete", "pod", "rotation", "-n", NAMESPACE, "--grace-period=1")


def test_deleting_a_running_pod_stops_its_process(cluster: Cluster):
    cluster.create_pod("sleeper", [{"name": "main", "image": "process.local/unused",
                                    "command": ["sleep", "300"]}])
    pod = cluster.wait_pod("sleeper", lambda p: p.status.phase == "Running", "Running")
    pgid = int(pod.status.container_statuses[0].container_id.removeprefix("local://"))
    record = cluster.kubelet.pids_dir / f"{pod.metadata.uid}_main"
    assert int(record.read_text().split()[0]) == pgid
    assert group_alive(pgid)

    began = time.monotonic()
    cluster.kubectl("delete", "pod", "sleeper", "-n", NAMESPACE, "--grace-period=5",
                    "--timeout=30s")
    assert time.monotonic() - began < 10
    assert not group_alive(pgid)
    assert not record.exists()
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespaced_pod("sleeper", NAMESPACE)
    assert gone.value.status == 404


def test_run_as_user_and_read_only_root(cluster: Cluster):
    # The security settings the operator gives recorder pods.
    cluster.create_pod("locked-down", [{
        "name": "main", "image": "process.local/unused",
        "command": ["sh", "-c",
                    "id -u; id -G; "
                    "if touch /lucid-rootfs-probe 2>/dev/null; then echo root-writable; "
                    "else echo root-read-only; fi; "
                    "echo hi > /scratch/file && echo scratch-writable; "
                    "grep -q CapEff:.0000000000000000 /proc/self/status && echo no-caps; "
                    # The venv's interpreter lives under 0700 /root here; still runnable.
                    "python -c 'import kubernetes; print(\"venv-python-ok\")'"],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }], restartPolicy="Never", volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
        securityContext={"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                         "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}})

    cluster.wait_pod("locked-down", lambda p: p.status.phase in ("Succeeded", "Failed"),
                     "finished")
    lines = cluster.log("locked-down").splitlines()
    assert lines[:2] == ["65532", "65532"], lines
    for expected in ("root-read-only", "scratch-writable", "no-caps", "venv-python-ok"):
        assert expected in lines, (expected, lines)
    assert not Path("/lucid-rootfs-probe").exists()


def test_in_cluster_config_with_the_projected_token(cluster: Cluster):
    cluster.rbac.create_namespaced_role(NAMESPACE, {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    cluster.rbac.create_namespaced_role_binding(NAMESPACE, {
        "metadata": {"name": "pod-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NAMESPACE}]})
    script = (
        "import os\n"
        "from kubernetes import client, config\n"
        "config.load_incluster_config()\n"
        "api = client.CoreV1Api()\n"
        "me = api.read_namespaced_pod(os.environ['HOSTNAME'], os.environ['POD_NAMESPACE'])\n"
        "print('own-uid', me.metadata.uid)\n"
        "try:\n"
        "    api.list_namespaced_secret(os.environ['POD_NAMESPACE'])\n"
        "except client.ApiException as exc:\n"
        "    print('secrets', exc.status)\n"
        # The kubelet's own kubeconfig and keys must not be usable from in here.
        f"print('node-kubeconfig', repr(open({str(cluster.control_plane.node_kubeconfig)!r})"
        ".read()))\n"
        f"print('pki', os.listdir({str(cluster.control_plane.workdir / 'pki')!r}))\n"
    )
    cluster.create_pod("in-cluster", [{
        "name": "main", "image": "process.local/unused", "command": ["python", "-c", script],
        "env": [{"name": "POD_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    }], restartPolicy="Never")

    pod = cluster.wait_pod("in-cluster", lambda p: p.status.phase in ("Succeeded", "Failed"),
                           "finished")
    log = cluster.log("in-cluster")
    assert pod.status.phase == "Succeeded", log
    assert f"own-uid {pod.metadata.uid}" in log
    assert "secrets 403" in log
    assert "node-kubeconfig ''" in log
    assert "pki []" in log


def test_on_failure_restarts_with_backoff(cluster: Cluster):
    cluster.create_pod("crasher", [{"name": "main", "image": "process.local/unused",
                                    "command": ["sh", "-c", "echo crashing; exit 1"],
                                    "terminationMessagePolicy": "FallbackToLogsOnError"}],
                       restartPolicy="OnFailure")
    pod = cluster.wait_pod("crasher",
                           lambda p: bool(p.status.container_statuses)
                           and p.status.container_statuses[0].restart_count >= 2,
                           "restartCount >= 2")
    status = pod.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.message == "crashing"
    assert pod.status.phase == "Running"
    cluster.kubectl("delete", "pod", "crasher", "-n", NAMESPACE, "--grace-period=1")


def test_missing_secret_is_a_config_error(cluster: Cluster):
    cluster.create_pod("no-secret", [{
        "name": "main", "image": "process.local/unused", "command": ["sleep", "300"],
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}],
    }])
    pod = cluster.wait_pod(
        "no-secret", lambda p: bool(p.status.container_statuses)
        and p.status.container_statuses[0].state.waiting is not None
        and p.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError",
        "CreateContainerConfigError")
    assert pod.status.container_statuses[0].state.waiting.message == 'secret "absent" not found'
    cluster.kubectl("delete", "pod", "no-secret", "-n", NAMESPACE, "--grace-period=1")


def test_readiness_probe_drives_ready(cluster: Cluster):
    port = 18000 + os.getpid() % 1000
    cluster.create_pod("web", [{
        "name": "main", "image": "process.local/unused",
        "command": ["sh", "-c", f"sleep 2; exec python -m http.server {port} --bind 127.0.0.1"],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }])
    running = cluster.wait_pod("web", lambda p: p.status.phase == "Running", "Running")
    assert not running.status.container_statuses[0].ready
    ready = cluster.wait_pod("web", lambda p: p.status.container_statuses[0].ready, "ready")
    conditions = {c.type: c.status for c in ready.status.conditions}
    assert conditions["Ready"] == "True"
    cluster.kubectl("delete", "pod", "web", "-n", NAMESPACE, "--grace-period=2")


def test_node_selector_mismatch_is_unschedulable(cluster: Cluster):
    cluster.create_pod("elsewhere", [{"name": "main", "image": "process.local/unused",
                                      "command": ["sleep", "1"]}],
                       nodeSelector={"disktype": "ssd"})
    pod = cluster.wait_pod(
        "elsewhere", lambda p: any(c.type == "PodScheduled" and c.reason == "Unschedulable"
                                   for c in p.status.conditions or []), "Unschedulable")
    assert not pod.spec.node_name
    cluster.kubectl("delete", "pod", "elsewhere", "-n", NAMESPACE)


def test_spec_values_are_never_run_as_shell(cluster: Cluster, tmp_path: Path):
    canary = tmp_path / "pwned"
    hostile = f"'; touch {canary}; echo '$(touch {canary})`touch {canary}`"
    # Mount points are created on the host (documented), hence a dedicated parent.
    parent = Path(f"/tmp/lucid-kubelet-test-{os.getpid()}")
    relative = f"lucid-canary-{os.getpid()}"
    mount_path = f"{parent}/it's $(touch {relative}) `touch {relative}`"
    try:
        cluster.create_pod("hostile", [{
            "name": "main", "image": "process.local/unused",
            "command": ["sh", "-c", 'printf "%s\\n" "$HOSTILE"; touch "$MOUNT/written"'],
            "env": [{"name": "HOSTILE", "value": hostile},
                    {"name": "MOUNT", "value": mount_path}],
            "volumeMounts": [{"name": "scratch", "mountPath": mount_path}],
        }], restartPolicy="Never", volumes=[{"name": "scratch", "emptyDir": {}}])
        cluster.wait_pod("hostile", lambda p: p.status.phase == "Succeeded", "Succeeded")
        assert hostile in cluster.log("hostile")
        assert not canary.exists()
        assert not Path("/", relative).exists() and not Path("/tmp", relative).exists()
        # The write went to the volume, not to the host's mount point.
        assert not Path(mount_path, "written").exists()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_config_maps_downward_api_env_from_and_two_containers(cluster: Cluster):
    cluster.core.create_namespaced_config_map(NAMESPACE, {
        "metadata": {"name": "settings"}, "data": {"mode": "fast", "level": "3"}})
    show = ("echo MODE=$MODE; echo CFG_level=$CFG_level; echo OPT=${OPT-unset}; "
            "echo NODE=$NODE; echo LABEL=$LABEL; cat /cfg/renamed; echo; "
            "cat /info/labels; echo; cat /info/name; echo")
    cluster.core.create_namespaced_pod(NAMESPACE, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "configured", "labels": {"app": "demo"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": "process.local/unused", "command": ["sh", "-c", show],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {
                        "name": "settings", "key": "mode"}}},
                    {"name": "OPT", "valueFrom": {"configMapKeyRef": {
                        "name": "absent", "key": "x", "optional": True}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "LABEL", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['app']"}}},
                ],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg", "readOnly": True},
                                 {"name": "info", "mountPath": "/info"}],
            }, {
                "name": "side", "image": "process.local/unused",
                "command": ["sh", "-c", "echo side-ran"],
            }],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "settings",
                                              "items": [{"key": "mode", "path": "renamed"}]}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            ],
        }})
    pod = cluster.wait_pod("configured", lambda p: p.status.phase in ("Succeeded", "Failed"),
                           "finished")
    log = cluster.log("configured")
    assert pod.status.phase == "Succeeded", log
    for expected in ("MODE=fast", "CFG_level=3", "OPT=unset", f"NODE={NODE_NAME}",
                     "LABEL=demo", 'app="demo"', "configured"):
        assert expected in log.splitlines(), (expected, log)
    assert "fast" in log.splitlines()
    side = cluster.kubelet.pod_log(NAMESPACE, "configured", "side").read_text()
    assert side == "side-ran\n"


def test_init_containers_fail_the_pod_clearly(cluster: Cluster):
    cluster.create_pod("with-init", [{"name": "main", "image": "process.local/unused",
                                      "command": ["sleep", "1"]}],
                       initContainers=[{"name": "init", "image": "process.local/unused",
                                        "command": ["true"]}])
    pod = cluster.wait_pod("with-init", lambda p: p.status.phase == "Failed", "Failed")
    assert pod.status.reason == "UnsupportedByLocalKubelet"
    assert "init containers" in pod.status.message


def test_sigkilled_kubelet_leaves_nothing_and_never_reruns_a_pod(cluster: Cluster):
    # Last in the module: it restarts the kubelet.
    cluster.create_pod("survivor", [{"name": "main", "image": "process.local/unused",
                                     "command": ["sleep", "300"]}])
    pod = cluster.wait_pod("survivor", lambda p: p.status.phase == "Running", "Running")
    pgid = int(pod.status.container_statuses[0].container_id.removeprefix("local://"))
    assert cluster.kubelet.proc is not None
    cluster.kubelet.proc.kill()
    assert group_alive(pgid), "pod processes outlive a SIGKILLed kubelet"
    assert kill_leftovers(cluster.kubelet.workdir) == [pgid]
    assert not group_alive(pgid)

    cluster.kubelet.start()
    failed = cluster.wait_pod("survivor", lambda p: p.status.phase == "Failed", "Failed")
    assert failed.status.reason == "KubeletRestarted"
    assert failed.status.container_statuses[0].state.terminated.reason == \
        "ContainerStatusUnknown"
    cluster.kubectl("delete", "pod", "survivor", "-n", NAMESPACE, "--timeout=30s")
