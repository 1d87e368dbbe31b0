"""The Helm chart on the local stack: install, record, upgrade, uninstall, and dry runs.

The operator here is the chart's own Deployment, run from the operator image
(localhost/lucid-operator, built from Dockerfile.operator) as an OCI container under the
chart's ServiceAccount (in-cluster config), so every API call it makes is checked against
the chart's RBAC, not an admin kubeconfig. Its recorder pods are the stand-in (a host
process) for the lifecycle tests, and the real recorder image for one recording.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from lucid_devstack import images, kubelet_podman
from lucid_devstack.operator_proc import STANDIN_IMAGE
from lucid_devstack.proc import StackError, free_port
from lucid_devstack.stack import Stack, venv_bin
from lucid_recorder.sealing.keys import keygen
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "lucid"
RELEASE = "lucid"
FULLNAME = f"{RELEASE}-lucid"
STANDIN_RECORDER = ["python", "-m", "lucid_devstack.standin_recorder"]
SELECTOR = f"app.kubernetes.io/name=lucid-operator,app.kubernetes.io/instance={RELEASE}"


@dataclass
class Helm:
    stack: Stack
    home: Path

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.stack.env(),
               # Helm's caches and repositories stay out of the user's home.
               "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data")}
        done = subprocess.run([str(self.stack.helm()), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
        if check and done.returncode != 0:
            raise StackError(f"helm {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
        return done


@dataclass
class Release:
    helm: Helm
    namespace: str
    base_values: Path
    notes: str = ""

    def install_or_upgrade(self, verb: str, *sets: str) -> str:
        return self.helm(verb, RELEASE, str(CHART), "--namespace", self.namespace,
                         "-f", str(self.base_values), *sets, "--wait", "--timeout", "150s").stdout


@pytest.fixture(scope="module")
def helm(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(stack, tmp_path_factory.mktemp("helm-home"))


def image_values(kind: str) -> dict[str, str]:
    """The chart's image values for one of our locally built images."""
    repository, _, tag = images.image_name(kind).rpartition(":")
    return {"repository": repository, "tag": tag}


def base_values(path: Path) -> Path:
    """The test's values: the operator image, the stand-in recorder, free ports on the
    shared host network."""
    path.write_text(yaml.safe_dump({
        "operator": {"image": {**image_values("operator"), "pullPolicy": "Never"},
                     "replicas": 1, "logFormat": "text", "healthPort": free_port(),
                     "metricsPort": free_port(), "retryBackoffSeconds": 1,
                     "retryBackoffMaxSeconds": 4, "deleteTimeoutSeconds": 30},
        "recorder": {"image": {"repository": STANDIN_IMAGE, "tag": "0.1.0"},
                     "command": STANDIN_RECORDER, "terminationGraceSeconds": 10},
    }))
    return path


@pytest.fixture(scope="module")
def release(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    images.ensure_images()  # a no-op when both are current
    namespace = f"lucid-helm-{uuid.uuid4().hex[:6]}"
    made = Release(helm, namespace, base_values(tmp_path_factory.mktemp("values") / "v.yaml"))
    made.notes = made.install_or_upgrade("install", "--create-namespace")
    yield made
    # Whatever a test left behind, no operator of this module outlives it.
    helm("uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)
    wait_for(lambda: not operator_pods(helm.stack, namespace), 60, "operator pods gone")


def operator_pods(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    listed = stack.kubectl("get", "pods", "-n", namespace, "-l", SELECTOR, "-o", "json")
    return json.loads(listed.stdout)["items"]


def running_operator(stack: Stack, namespace: str, count: int = 1) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in operator_pods(stack, namespace)
                if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p["status"].get("phase") == "Running" and all(
            c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
        return ok if len(ok) == count == len(pods) else None
    return wait_for(ready, 90, f"{count} ready operator pod(s) in {namespace}")


def can_i(stack: Stack, namespace: str, *args: str) -> bool:
    done = stack.kubectl("auth", "can-i", *args,
                         f"--as=system:serviceaccount:{namespace}:{FULLNAME}", check=False)
    return done.stdout.strip() == "yes"


def record_and_stop(sessions: Sessions, name: str) -> dict[str, Any]:
    sessions.apply(sessions.manifest(name))
    status = sessions.wait_phase(name, "Recording", timeout=60)
    assert status["podName"] == f"{name}-recorder-0"
    sessions.apply(sessions.manifest(name, state="Stopped"))
    return sessions.wait_phase(name, "Completed", timeout=60)


# --- install, record, upgrade, uninstall ---------------------------------------------------


def test_install_runs_the_operator_pod_with_the_charts_identity(release: Release):
    stack = release.helm.stack
    assert "lucid-seal keygen --out-dir" in release.notes
    (pod,) = running_operator(stack, release.namespace)
    assert pod["spec"]["nodeName"] == "lucid-local"
    assert pod["spec"]["serviceAccountName"] == FULLNAME
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    # Run from the operator image, as a container: its log is the operator's own.
    container = pod["status"]["containerStatuses"][0]
    assert container["image"] == images.image_name("operator")
    assert container["containerID"].startswith(kubelet_podman.CONTAINER_ID_PREFIX)
    log = stack.kubelet.pod_log(release.namespace, pod["metadata"]["name"], "operator")
    assert "operator starting: cluster-wide" in log.read_text()
    # The CRDs came with the chart (the peering ones exist nowhere else).
    for crd in ("recordingsessions.lucid.dev", "clusterkopfpeerings.kopf.dev",
                "kopfpeerings.kopf.dev"):
        stack.kubectl("get", "crd", crd)
    # The identity it runs with is the chart's least-privilege one, not an admin.
    ns = release.namespace
    assert can_i(stack, ns, "get", "secrets", "-n", "default")
    assert can_i(stack, ns, "create", "pods", "-n", "default")
    assert can_i(stack, ns, "patch", "recordingsessions.lucid.dev", "--subresource=status",
                 "-n", "default")
    for forbidden in (("list", "secrets", "-n", "default"), ("watch", "secrets", "-A"),
                      ("create", "clusterrolebindings"), ("delete", "recordingsessions.lucid.dev"),
                      ("update", "recordingsessions.lucid.dev"), ("create", "deployments"),
                      ("escalate", "roles"), ("*", "*")):
        assert not can_i(stack, ns, *forbidden), forbidden


def test_installed_operator_records_a_session_end_to_end(release: Release, sessions: Sessions):
    status = record_and_stop(sessions, "helm-basic")
    assert status["stopReason"] == "StoppedBySpec"
    reasons = [e["reason"] for e in sessions.events("helm-basic")]
    assert {"RecorderCreated", "Recording", "Stopping", "Completed"} <= set(reasons), reasons
    # Per-session RBAC was created by the operator under the chart's ClusterRole.
    rbac = client.RbacAuthorizationV1Api(sessions.api)
    assert rbac.read_namespaced_role("helm-basic-recorder", sessions.namespace).rules
    # Deleting goes through the finalizer, with the chart's permissions too.
    sessions.stack.kubectl("delete", "recordingsession", "helm-basic", "-n", sessions.namespace,
                           "--wait=true", "--timeout=60s")
    assert sessions.get("helm-basic") is None


def test_installed_operator_records_from_the_recorder_image(release: Release,
                                                            sessions: Sessions, tmp_path: Path):
    """The chart as a user installs it: both images, a real recording, verified."""
    stack = release.helm.stack
    release.install_or_upgrade("upgrade", "--set-json",
                               f"recorder.image={json.dumps(image_values('recorder'))}",
                               "--set-json", 'recorder.command=["lucid-recorder"]',
                               "--set", "recorder.metricsPort=0",
                               "--set", "recorder.terminationGraceSeconds=30",
                               "--set", "operator.deleteTimeoutSeconds=60")
    running_operator(stack, release.namespace)
    keys = keygen(tmp_path / "keys")
    sessions.secret("auditor-helm", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest("helm-real", chunking={"maxSeconds": 2})
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = "auditor-helm"
    manifest["spec"]["storage"]["bucket"] = "helm-recordings"
    sessions.apply(manifest)
    sessions.wait_phase("helm-real", "Recording", timeout=90)
    (pod,) = sessions.pods("helm-real")
    recorder = pod["status"]["containerStatuses"][0]
    assert recorder["image"] == images.image_name("recorder")
    assert recorder["containerID"].startswith(kubelet_podman.CONTAINER_ID_PREFIX)
    stack.desktop.type_text("recorded through the chart")
    wait_for(lambda: int((sessions.status("helm-real").get("pipeline") or {})
                         .get("chunksStored", 0)) >= 2, 60, "chunks stored")
    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    status = sessions.wait_phase("helm-real", "Completed", timeout=90)
    assert status["pipeline"]["state"] == "Finalized"
    env = {**os.environ, **stack.env(), "LUCID_S3_ACCESS_KEY": stack.minio.access_key,
           "LUCID_S3_SECRET_KEY": stack.minio.secret_key}
    verified = subprocess.run(
        [str(venv_bin() / "lucid-seal"), "verify", "--endpoint", stack.minio.endpoint,
         "--bucket", "helm-recordings", "--no-tls", "--session",
         f"{sessions.namespace}/helm-real", "--private-key", str(keys.private)],
        capture_output=True, text=True, timeout=120, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Back to the stand-in for the tests that follow.
    release.install_or_upgrade("upgrade")
    running_operator(stack, release.namespace)


def test_upgrade_with_changed_values_rolls_the_operator(release: Release, sessions: Sessions):
    stack = release.helm.stack
    (before,) = running_operator(stack, release.namespace)
    out = release.install_or_upgrade("upgrade", "--set", "operator.logLevel=DEBUG")
    revision = re.search(r"^REVISION: (\d+)$", out, re.M)
    assert "STATUS: deployed" in out and revision and int(revision.group(1)) >= 2, out
    (after,) = running_operator(stack, release.namespace)
    assert after["metadata"]["name"] != before["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in after["spec"]["containers"][0]["env"]}
    assert env["LUCID_LOG_LEVEL"] == "DEBUG"
    record_and_stop(sessions, "helm-upgraded")
    log = stack.kubelet.pod_log(release.namespace, after["metadata"]["name"], "operator")
    assert " DEBUG " in log.read_text()


def test_upgrade_to_two_replicas_elects_one_active_operator(release: Release,
                                                            sessions: Sessions):
    stack = release.helm.stack
    # Two pods share the local host's network: only with the ports off can both run.
    release.install_or_upgrade("upgrade", "--set", "operator.replicas=2",
                               "--set", "operator.healthPort=0", "--set", "operator.metricsPort=0")
    pods = running_operator(stack, release.namespace, count=2)

    def both_peers() -> dict[str, Any] | None:
        done = stack.kubectl("get", "clusterkopfpeering", FULLNAME, "-o", "json", check=False)
        status = (json.loads(done.stdout).get("status") or {}) if done.returncode == 0 else {}
        names = {p["metadata"]["name"] for p in pods}
        return status if names <= set(status) else None

    peers = wait_for(both_peers, 30, "both replicas in the ClusterKopfPeering")
    assert len({peer["priority"] for peer in peers.values()}) == 2, peers
    sessions.apply(sessions.manifest("helm-ha"))
    sessions.wait_phase("helm-ha", "Recording", timeout=30)
    # The elected replica also finalizes, so nothing of this session outlives the release.
    stack.kubectl("delete", "recordingsession", "helm-ha", "-n", sessions.namespace,
                  "--wait=true", "--timeout=60s")


def test_recorder_ephemeral_storage_reaches_the_recorder_pods(release: Release,
                                                              sessions: Sessions):
    release.install_or_upgrade(
        "upgrade", "--set", "recorder.resources.requests.ephemeral-storage=1Gi",
        "--set", "recorder.resources.limits.ephemeral-storage=2Gi")
    running_operator(release.helm.stack, release.namespace)
    sessions.apply(sessions.manifest("helm-scratch"))
    sessions.wait_phase("helm-scratch", "Recording", timeout=60)
    pod = sessions.stack.kubectl("get", "pod", "helm-scratch-recorder-0", "-n", sessions.namespace,
                                 "-o", "jsonpath={.spec.containers[0].resources}").stdout
    print(pod)
    resources = json.loads(pod)
    assert resources["requests"]["ephemeral-storage"] == "1Gi"
    assert resources["limits"]["ephemeral-storage"] == "2Gi"
    sessions.stack.kubectl("delete", "recordingsession", "helm-scratch", "-n",
                           sessions.namespace, "--wait=true", "--timeout=60s")


def test_uninstall_removes_the_operator_and_keeps_the_crds(release: Release):
    stack, ns = release.helm.stack, release.namespace
    release.helm("uninstall", RELEASE, "--namespace", ns, "--wait")
    wait_for(lambda: not operator_pods(stack, ns), 60, "operator pods gone")
    for kind in ("deployment", "serviceaccount"):
        assert not stack.kubectl("get", kind, FULLNAME, "-n", ns, "--ignore-not-found",
                                 "-o", "name").stdout.strip()
    for kind in ("clusterrole", "clusterrolebinding", "clusterkopfpeering"):
        assert not stack.kubectl("get", kind, "-l", f"app.kubernetes.io/instance={RELEASE}",
                                 "-o", "name").stdout.strip(), kind
    for crd in ("recordingsessions.lucid.dev", "clusterkopfpeerings.kopf.dev"):
        stack.kubectl("get", "crd", crd)


# --- helm template | kubectl apply --dry-run=server ----------------------------------------

# Stand-ins for the Prometheus Operator's CRDs: enough for the API server to accept the
# chart's ServiceMonitor/PodMonitor in a dry run (their own schema is not checked).
MONITORING_CRDS = "\n---\n".join(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.monitoring.coreos.com}}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {plural[:-1]}}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
""" for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PodMonitor", "podmonitors")))


def server_version(stack: Stack) -> str:
    version = json.loads(stack.kubectl("version", "-o", "json").stdout)["serverVersion"]
    return version["gitVersion"].lstrip("v").split("-")[0]


@pytest.mark.parametrize("values", [
    [],
    ["--set", "operator.replicas=2", "--set", "serviceMonitor.enabled=true",
     "--set", "networkPolicy.enabled=true",
     "--set", "operator.watchNamespaces={dry-a,dry-b}",
     "--set", "networkPolicy.rdpTargetCIDRs={10.40.0.0/16}",
     "--set", "networkPolicy.storageCIDRs={10.50.0.10/32}",
     "--set", "networkPolicy.apiServerCIDRs={10.0.0.1/32}"],
    ["-f", str(REPO / "examples" / "values-production.yaml")],
], ids=["defaults", "everything-on", "values-production"])
def test_template_passes_a_server_side_dry_run(helm: Helm, values: list[str]):
    stack = helm.stack
    # CRDs for the custom kinds the templates render; --include-crds would not help, since
    # a dry run creates nothing for the later objects to be checked against.
    stack.kubectl("apply", "-f", str(CHART / "crds"))
    stack.kubectl("apply", "-f", "-", input_text=MONITORING_CRDS)
    for crd in ("clusterkopfpeerings.kopf.dev", "servicemonitors.monitoring.coreos.com",
                "podmonitors.monitoring.coreos.com"):
        stack.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    for namespace in ("lucid-dry", "dry-a", "dry-b", "lucid-demo"):
        stack.kubectl("create", "namespace", namespace, check=False)
    rendered = helm("template", "dry", str(CHART), "--namespace", "lucid-dry",
                    "--kube-version", server_version(stack), *values).stdout
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    done = stack.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                         input_text=rendered)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(objects), done.stdout
    assert all(line.endswith("(server dry run)") for line in lines), done.stdout


# --- values the chart refuses, with a message saying what to change --------------------------


@pytest.mark.parametrize(("sets", "expected"), [
    (["--set", "recorder.resources.requests.memory=4Gi"],
     ["recorder.resources.requests.memory (4Gi) is more than recorder.resources.limits.memory "
      "(512Mi): Kubernetes refuses a pod whose request exceeds its limit"]),
    (["--set", "recorder.resources.requests.cpu=2"],
     ["recorder.resources.requests.cpu (2) is more than recorder.resources.limits.cpu (1)"]),
    (["--set", "networkPolicy.enabled=true"],
     ["networkPolicy.enabled=true needs the namespaces where sessions run",
      "set networkPolicy.rdpTargetCIDRs", "networkPolicy.storageCIDRs",
      "networkPolicy.apiServerCIDRs"]),
    (["--set", "recorder.terminationGraceSeconds=600"],
     ["operator.deleteTimeoutSeconds (300) must exceed recorder.terminationGraceSeconds (600)",
      "set operator.deleteTimeoutSeconds to at least 610"]),
], ids=["memory-request-above-limit", "cpu-request-above-limit", "network-policy-alone",
        "delete-timeout-within-grace"])
def test_install_refuses_unworkable_values_readably(helm: Helm, sets: list[str],
                                                   expected: list[str]):
    namespace = f"lucid-refused-{uuid.uuid4().hex[:6]}"
    for dry_run in (["--dry-run=server"], []):
        done = helm("install", "refused", str(CHART), "--namespace", namespace,
                    "--create-namespace", *dry_run, *sets, check=False)
        print(done.stderr)
        assert done.returncode != 0, done.stdout
        assert "these values cannot work" in done.stderr, done.stderr
        for message in expected:
            assert message in done.stderr, done.stderr
    # Refused before anything reached the cluster.
    assert helm("list", "-A", "-q").stdout.split().count("refused") == 0


# --- the operator's signing key under the chart's RBAC -----------------------------------------


def test_the_charts_rbac_lets_the_operator_keep_its_signing_key_and_no_more(helm: Helm):
    """The product's own key handling (signing_key.load_or_create), impersonating the chart's
    ServiceAccount: it may create and read its Secret and publish its public key in its own
    namespace, and read no other Secret there. Only the RBAC objects are applied, so no
    image is needed."""
    from kubernetes import config

    from lucid_common.evidence import key_id
    from lucid_operator.kube import Kube
    from lucid_operator.settings import OperatorSettings
    from lucid_operator.signing_key import load_or_create

    stack = helm.stack
    namespace = f"lucid-rbac-{uuid.uuid4().hex[:6]}"
    stack.kubectl("create", "namespace", namespace)
    rendered = helm("template", RELEASE, str(CHART), "--namespace", namespace,
                    "--kube-version", server_version(stack),
                    "--set", "operator.watchNamespaces={team-rbac}").stdout
    rbac = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in (
        "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]
    stack.kubectl("create", "namespace", "team-rbac", check=False)
    stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(rbac))
    stack.kubectl("create", "secret", "generic", "someone-elses", "-n", namespace,
                  "--from-literal=x=y")

    api = config.new_client_from_config(config_file=str(stack.kube.kubeconfig))
    api.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:{FULLNAME}")
    settings = OperatorSettings(operator_namespace=namespace)
    key = wait_for(lambda: _try_load(load_or_create, Kube(api), settings), 30,
                   "the RBAC to take effect")
    again = load_or_create(Kube(api), settings)
    assert key_id(again.public_key()) == key_id(key.public_key())  # made once, then read
    published = json.loads(stack.kubectl("get", "configmap", "-n", namespace,
                                         "lucid-operator-public-key", "-o", "json").stdout)
    assert published["data"]["keyId"] == key_id(key.public_key())
    assert not can_i(stack, namespace, "get", "secret/someone-elses", "-n", namespace)
    assert not can_i(stack, namespace, "list", "secrets", "-n", namespace)
    assert can_i(stack, namespace, "get", "secret/lucid-operator-signing-key", "-n", namespace)


def _try_load(load, kube, settings):
    from kubernetes.client.exceptions import ApiException
    try:
        return load(kube, settings)
    except ApiException as exc:
        if exc.status == 403:  # RBAC caches catch up within moments
            return None
        raise
