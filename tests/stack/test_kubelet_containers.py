"""The local kubelet's container mode: pods run from their images as OCI containers (podman).

The image is the build base of our own images (Debian 12 with a shell), so that a test can
look around inside; the operator and recorder images have no shell at all.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from lucid_devstack import images, kubelet_podman, podman
from lucid_devstack.kubelet_spec import VOLUME_SYNC_SECONDS
from tests.stack import test_kubelet
from tests.stack.test_kubelet import NAMESPACE, Cluster, wait_for

pytestmark = pytest.mark.stack

IMAGE = images.BUILD_BASE
# The same control plane + local kubelet as the process-mode tests, one per module.
cluster = test_kubelet.cluster
NON_ROOT = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532}
LOCKED_DOWN = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
               "capabilities": {"drop": ["ALL"]}}


@pytest.fixture(scope="module", autouse=True)
def base_image() -> None:
    images.ensure_build_base()


def terminated(pod) -> dict | None:
    statuses = pod.status.container_statuses or []
    state = statuses[0].state if statuses else None
    return state.terminated.to_dict() if state and state.terminated else None


def test_container_runs_from_its_image_locked_down_with_env_and_volumes(cluster: Cluster):
    cluster.core.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": "in-container"}, "stringData": {"token": "tok-in-a-container"}})
    script = ("id -u; id -g; echo \"greeting=$GREETING\"; cat /etc/x/token; echo; "
              "cat /etc/debian_version; "
              "touch /rootfs-write 2>/dev/null && echo root-writable || echo root-read-only; "
              "touch /scratch/ok && echo scratch-writable; "
              "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
              "echo \"path=$PATH\"; ls /var/run/secrets/kubernetes.io/serviceaccount")
    cluster.create_pod("boxed", [{
        "name": "main", "image": IMAGE, "command": ["sh", "-c"], "args": [script],
        "env": [{"name": "GREETING", "value": "hello from the spec"}],
        "securityContext": LOCKED_DOWN,
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
        "volumeMounts": [{"name": "secret", "mountPath": "/etc/x", "readOnly": True},
                         {"name": "scratch", "mountPath": "/scratch"}]}],
        restartPolicy="Never", securityContext={**NON_ROOT, "fsGroup": 65532},
        volumes=[{"name": "secret", "secret": {"secretName": "in-container"}},
                 {"name": "scratch", "emptyDir": {}}])
    pod = cluster.wait_pod("boxed", terminated, "the container to exit", timeout=60)
    state = terminated(pod)
    assert state["exit_code"] == 0, cluster.log("boxed")
    assert pod.status.container_statuses[0].container_id.startswith("podman://")
    lines = cluster.log("boxed").splitlines()
    assert lines[:4] == ["65532", "65532", "greeting=hello from the spec", "tok-in-a-container"]
    assert lines[4].startswith("12.")  # the image's own root, not the host's
    assert "root-read-only" in lines and "scratch-writable" in lines
    assert "CapEff:\t0000000000000000" in lines
    assert "NoNewPrivs:\t1" in lines
    # The image's PATH, not the host venv's.
    assert "path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
    assert {"ca.crt", "namespace", "token"} <= set(lines)


def test_memory_limit_is_enforced(cluster: Cluster):
    hog = "b = bytearray(256 * 1024 * 1024); print('survived')"
    cluster.create_pod("hog", [{
        "name": "main", "image": IMAGE, "command": ["python3", "-c", hog],
        "resources": {"limits": {"memory": "64Mi"}}}], restartPolicy="Never")
    pod = cluster.wait_pod("hog", terminated, "the container to die", timeout=60)
    assert terminated(pod)["exit_code"] == 137, cluster.log("hog")
    assert "survived" not in cluster.log("hog")


def test_missing_image_waits_as_err_image_never_pull(cluster: Cluster):
    cluster.create_pod("no-image", [{"name": "main", "image": "localhost/never-built:1"}])

    def waiting(pod):
        statuses = pod.status.container_statuses or []
        state = statuses[0].state.waiting if statuses and statuses[0].state else None
        return state if state and state.reason == kubelet_podman.IMAGE_NEVER_PULL else None

    pod = cluster.wait_pod("no-image", waiting, "ErrImageNeverPull", timeout=30)
    message = pod.status.container_statuses[0].state.waiting.message
    assert message == ('Container image "localhost/never-built:1" is not present with pull '
                       'policy of Never')
    cluster.core.delete_namespaced_pod("no-image", NAMESPACE, grace_period_seconds=0)


def test_run_as_non_root_is_checked_against_the_images_user(cluster: Cluster):
    # The build base has no USER: it would run as root, which runAsNonRoot refuses.
    cluster.create_pod("rooty", [{"name": "main", "image": IMAGE, "command": ["true"]}],
                       securityContext={"runAsNonRoot": True})

    def config_error(pod):
        statuses = pod.status.container_statuses or []
        state = statuses[0].state.waiting if statuses and statuses[0].state else None
        return state if state and state.reason == "CreateContainerConfigError" else None

    pod = cluster.wait_pod("rooty", config_error, "CreateContainerConfigError", timeout=30)
    assert "runAsNonRoot and image will run as root" in \
        pod.status.container_statuses[0].state.waiting.message
    cluster.core.delete_namespaced_pod("rooty", NAMESPACE, grace_period_seconds=0)


def test_delete_sends_sigterm_into_the_container_and_waits_for_it(cluster: Cluster):
    script = ("trap 'echo got TERM; sleep 1; echo flushed; exit 0' TERM; echo started; "
              "while true; do sleep 0.2; done")
    cluster.create_pod("graceful", [{"name": "main", "image": IMAGE,
                                     "command": ["sh", "-c", script]}],
                       terminationGracePeriodSeconds=20)
    cluster.wait_pod("graceful", lambda p: p.status.phase == "Running" and
                     "started" in cluster.log("graceful"), "running", timeout=60)
    name = cluster.pod("graceful").status.container_statuses[0].container_id.removeprefix(
        kubelet_podman.CONTAINER_ID_PREFIX)
    cluster.core.delete_namespaced_pod("graceful", NAMESPACE)

    def gone() -> bool:
        listed = cluster.core.list_namespaced_pod(NAMESPACE,
                                                  field_selector="metadata.name=graceful")
        return not listed.items

    wait_for(gone, 40, "the pod to be finalized", cluster)
    log = cluster.log("graceful").splitlines()
    assert log[-2:] == ["got TERM", "flushed"], log
    listed = podman.run(["ps", "--all", "--format", "json", "--filter", f"name={name}"],
                        timeout=60)
    assert json.loads(listed.stdout or b"[]") == []


def test_a_crashed_container_restarts_as_a_new_container(cluster: Cluster):
    cluster.create_pod("crashy", [{"name": "main", "image": IMAGE,
                                   "command": ["sh", "-c", "echo run; exit 3"]}])

    def restarted(pod):
        statuses = pod.status.container_statuses or []
        return statuses and statuses[0].restart_count >= 1 and statuses[0].last_state.terminated

    pod = cluster.wait_pod("crashy", restarted, "a restart", timeout=60)
    last = pod.status.container_statuses[0].last_state.terminated
    assert last.exit_code == 3 and last.reason == "Error"
    assert last.container_id.endswith("_0")  # the first attempt's container
    cluster.core.delete_namespaced_pod("crashy", NAMESPACE, grace_period_seconds=0)


def test_the_kubelet_removes_containers_a_dead_client_left(cluster: Cluster):
    label = str(cluster.kubelet.workdir.resolve())
    podman.run(["run", "-d", *podman.ULIMITS, "--name", "lucid-orphan-test", "--label",
                f"{podman.KUBELET_LABEL}={label}", IMAGE, "sleep", "300"], timeout=60)
    assert kubelet_podman.remove_all(label)
    done = subprocess.run(podman.argv("container", "exists", "lucid-orphan-test"),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1


def test_an_updated_secret_reaches_a_running_container(cluster: Cluster):
    """The volume is bind-mounted as a directory: the kubelet's ..data swap shows inside."""
    cluster.core.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": "rotating-box"}, "stringData": {"key": "box-old"}})
    cluster.create_pod("rotation-box", [{
        "name": "main", "image": IMAGE,
        "command": ["sh", "-c", "while true; do echo \"read:$(cat /etc/rot/key)\"; "
                                "sleep 0.2; done"],
        "securityContext": LOCKED_DOWN,
        "volumeMounts": [{"name": "rot", "mountPath": "/etc/rot", "readOnly": True}]}],
        securityContext=NON_ROOT,
        volumes=[{"name": "rot", "secret": {"secretName": "rotating-box"}}])
    cluster.wait_pod("rotation-box", lambda p: p.status.phase == "Running", "Running",
                     timeout=60)
    wait_for(lambda: "read:box-old" in cluster.log("rotation-box"), 60, "the first value")
    cluster.core.patch_namespaced_secret("rotating-box", NAMESPACE,
                                         {"stringData": {"key": "box-new"}})
    wait_for(lambda: "read:box-new" in cluster.log("rotation-box"),
             2 * VOLUME_SYNC_SECONDS + 10, "the updated value inside the container", cluster)
    reads = {line for line in cluster.log("rotation-box").splitlines()
             if line.startswith("read:")}
    assert reads == {"read:box-old", "read:box-new"}, reads
    cluster.kubectl("delete", "pod", "rotation-box", "-n", NAMESPACE, "--grace-period=1")
