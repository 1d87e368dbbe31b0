"""The Helm chart without a cluster: lint, rendered objects, RBAC, values schema.

The RBAC checks are two-sided: the operator must hold every verb its code uses (and every
permission of the per-session Role it creates, or the API server refuses that Role), and
nothing more.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lucid_common.api import RecordingSessionSpec
from lucid_devstack import paths
from lucid_operator.builders import SessionRef, labels, recorder_pod, role
from lucid_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "lucid"
RELEASE, NAMESPACE = "rel", "lucid-system"
FULLNAME = f"{RELEASE}-lucid"
# The locally built helm has no Kubernetes version stamped in, and so would judge the
# chart's kubeVersion against its fallback (v1.20); a real cluster's version decides.
KUBE_VERSION = "1.35.0"
POLICY_ON: dict[str, Any] = {"networkPolicy": {
    "enabled": True, "rdpTargetCIDRs": ["10.40.0.0/16"], "storageCIDRs": ["10.50.0.10/32"],
    "apiServerCIDRs": ["10.0.0.1/32"]}}

# Every (apiGroup, resource, verb) the operator's code uses: kopf (watch, finalizer and
# annotation patches, events), reconcile.py/kube.py, and kopf peering when replicas > 1.
RBAC_GROUP = "rbac.authorization.k8s.io"
NEEDED = (
    {("lucid.dev", "recordingsessions", v) for v in ("get", "list", "watch", "patch")}
    | {("lucid.dev", "recordingsessions/status", v) for v in ("get", "patch")}
    | {("", "pods", v) for v in ("get", "list", "watch", "create", "patch", "delete")}
    | {("", "serviceaccounts", v) for v in ("get", "create")}
    | {(RBAC_GROUP, r, v) for r in ("roles", "rolebindings") for v in ("get", "create")}
    | {("", "secrets", "get"), ("", "events", "create")}
)
# With scoped storage credentials (the default): the per-session STS key Secrets and the
# recorder pods' resume points.
SCOPED_NEEDED = {("", "secrets", "create"), ("", "secrets", "update"),
                 ("", "configmaps", "create")}
CLUSTER_NEEDED = {("apiextensions.k8s.io", "customresourcedefinitions", v)
                  for v in ("list", "watch")}


def helm() -> str:
    binary = paths.binary("helm")
    assert binary.exists(), f"helm is not built yet ({binary}); `make bootstrap` builds it"
    return str(binary)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=60)


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def template(tmp_path: Path, values: dict[str, Any] | None = None,
             *extra: str) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE,
            "--kube-version", KUBE_VERSION, *extra]
    if values:
        args += ["-f", values_file(tmp_path, values)]
    done = run_helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def template_error(tmp_path: Path, values: dict[str, Any]) -> str:
    done = run_helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                    "-f", values_file(tmp_path, values))
    assert done.returncode != 0, f"values were accepted: {values}"
    return done.stderr


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def all_grants(role_doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) triples a role grants, with or without resourceNames."""
    return {(group, resource, verb)
            for rule in role_doc["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


# --- lint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, {"operator": {"replicas": 3}}, {
    **POLICY_ON, "serviceMonitor": {"enabled": True},
    "operator": {"replicas": 2, "watchNamespaces": ["team-a", "team-b"]}}],
    ids=["defaults", "replicas", "everything"])
def test_helm_lint_is_clean(tmp_path: Path, values: dict[str, Any] | None):
    args = ["lint", "--strict", str(CHART)]
    if values:
        args += ["-f", values_file(tmp_path, values)]
    done = run_helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


# --- defaults --------------------------------------------------------------------------------


def test_defaults_render_a_standalone_cluster_wide_operator(tmp_path: Path):
    docs = template(tmp_path)
    assert kinds(docs) == ["ClusterRole", "ClusterRole", "ClusterRoleBinding",
                           "ClusterRoleBinding", "Deployment", "Role", "RoleBinding",
                           "ServiceAccount"]
    # The Role of its own namespace: its signing key Secret and public key ConfigMap.
    evidence = one(docs, "Role")
    assert evidence["metadata"]["namespace"] == NAMESPACE
    assert {"resources": ["secrets"], "resourceNames": ["lucid-operator-signing-key"],
            "verbs": ["get"], "apiGroups": [""]} in evidence["rules"]
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    # Standalone: no peering arbitrates, so two must never run at once.
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["command"] == ["lucid-operator"]
    assert container["image"] == "ghcr.io/lucid-dev/lucid-operator:0.1.0"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "health": 8080, "metrics": 9090}
    env = env_of(docs)
    assert env["LUCID_STANDALONE"] == "true" and "LUCID_PEERING_NAME" not in env
    assert env["LUCID_NAMESPACES"] == ""
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["LUCID_RECORDER_IMAGE"] == "ghcr.io/lucid-dev/lucid-recorder:0.1.0"


def test_every_lucid_env_var_is_a_valid_operator_setting(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    for values in (None, {"operator": {"replicas": 2, "watchNamespaces": ["a", "b"]}}):
        env = {k: v for k, v in env_of(template(tmp_path, values)).items()
               if k.startswith("LUCID_")}
        known = {f"LUCID_{name.upper()}" for name in OperatorSettings.model_fields}
        assert set(env) <= known, f"not operator settings: {set(env) - known}"
        for name in known:
            monkeypatch.delenv(name, raising=False)
        # The downward API fills LUCID_OPERATOR_NAMESPACE in a pod; stand in for it.
        assert env["LUCID_OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        env["LUCID_OPERATOR_NAMESPACE"] = NAMESPACE
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = OperatorSettings()
        assert settings.operator_namespace == NAMESPACE
        assert settings.signing_key_secret == "lucid-operator-signing-key"
        assert settings.recorder_command == ["lucid-recorder"]
        assert settings.health_port == 8080 and settings.metrics_port == 9090
        assert settings.standalone is (values is None)
        if values:
            assert settings.namespaces == ["a", "b"]
            assert settings.peering_name == FULLNAME


def test_recorder_command_reaches_the_operator_comma_joined(tmp_path: Path):
    docs = template(tmp_path, {"recorder": {
        "command": ["python", "-m", "lucid_devstack.standin_recorder"]}})
    assert env_of(docs)["LUCID_RECORDER_COMMAND"] == "python,-m,lucid_devstack.standin_recorder"


def test_health_port_zero_drops_the_probes(tmp_path: Path):
    docs = template(tmp_path, {"operator": {"healthPort": 0, "metricsPort": 0}})
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not {"ports", "startupProbe", "livenessProbe", "readinessProbe"} & set(container)
    assert env_of(docs)["LUCID_HEALTH_PORT"] == "0"


# --- RBAC ----------------------------------------------------------------------------------


def test_rbac_is_exactly_what_the_operator_uses(tmp_path: Path):
    docs = template(tmp_path)
    main = one(docs, "ClusterRole", FULLNAME)
    cluster = one(docs, "ClusterRole", f"{FULLNAME}-cluster")
    assert all_grants(main) == NEEDED | SCOPED_NEEDED
    assert all_grants(cluster) == CLUSTER_NEEDED
    for doc in (main, cluster):
        for rule in doc["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    # Secrets: read by name and written, never enumerated.
    secret_verbs = {v for g, r, v in all_grants(main) if r == "secrets"}
    assert secret_verbs == {"get", "create", "update"}
    # Bound cluster-wide to the chart's ServiceAccount, and to nothing else.
    bindings = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert sorted(b["roleRef"]["name"] for b in bindings) == [FULLNAME, f"{FULLNAME}-cluster"]
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME,
                                        "namespace": NAMESPACE}]


def test_operator_holds_every_permission_of_the_per_session_role(tmp_path: Path):
    # The API server refuses to let the operator create a Role that grants more than it has.
    held = all_grants(one(template(tmp_path), "ClusterRole", FULLNAME))
    session_role = role(SessionRef("ns", "s", "uid"))
    for rule in session_role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert (group, resource, verb) in held, (group, resource, verb)


def test_watch_namespaces_bind_per_namespace_only(tmp_path: Path):
    docs = template(tmp_path, {"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    role_bindings = [d for d in docs if d["kind"] == "RoleBinding"
                     and d["roleRef"]["kind"] == "ClusterRole"]
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["team-a", "team-b"]
    for binding in role_bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "ClusterRole", "name": FULLNAME}
    cluster_bindings = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in cluster_bindings] == [f"{FULLNAME}-cluster"]
    cluster = one(docs, "ClusterRole", f"{FULLNAME}-cluster")
    assert all_grants(cluster) == CLUSTER_NEEDED | {("", "namespaces", "list"),
                                                    ("", "namespaces", "watch")}
    assert env_of(docs)["LUCID_NAMESPACES"] == "team-a,team-b"


# --- peering (replicas > 1) ----------------------------------------------------------------


def test_replicas_use_cluster_peering(tmp_path: Path):
    docs = template(tmp_path, {"operator": {"replicas": 2}})
    peering = one(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == FULLNAME
    env = env_of(docs)
    assert env["LUCID_STANDALONE"] == "false" and env["LUCID_PEERING_NAME"] == FULLNAME
    spec = one(docs, "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert "podAntiAffinity" in spec["template"]["spec"]["affinity"]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    cluster = one(docs, "ClusterRole", f"{FULLNAME}-cluster")
    assert all_grants(cluster) == CLUSTER_NEEDED | {
        ("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "get", "patch")}
    # Patching is limited to the release's own peering object.
    named = [r for r in cluster["rules"] if r.get("resourceNames")]
    assert named == [{"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
                      "resourceNames": [FULLNAME], "verbs": ["get", "patch"]}]


def test_replicas_with_watch_namespaces_use_namespaced_peering(tmp_path: Path):
    docs = template(tmp_path, {"operator": {"replicas": 2, "watchNamespaces": ["a", "b"]}})
    peerings = [d for d in docs if d["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["a", "b"]
    assert {p["metadata"]["name"] for p in peerings} == {FULLNAME}
    assert not [d for d in docs if d["kind"] == "ClusterKopfPeering"]
    main = one(docs, "ClusterRole", FULLNAME)
    assert {(g, r, v) for g, r, v in all_grants(main) if g == "kopf.dev"} == {
        ("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "get", "patch")}


# --- optional features ---------------------------------------------------------------------


def test_network_policy_limits_recorder_egress(tmp_path: Path):
    values = {**POLICY_ON, "operator": {"watchNamespaces": ["team-a", "team-b"]}}
    docs = template(tmp_path, values)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    spec = policies[0]["spec"]
    # It selects what the operator actually labels its recorder pods with.
    selector = spec["podSelector"]["matchLabels"]
    recorder_labels = labels(SessionRef("ns", "s", "uid"))
    assert selector == {"app.kubernetes.io/name": "lucid-recorder"}
    assert selector.items() <= recorder_labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9108}]}]
    rdp, storage, api, dns = spec["egress"]
    assert rdp == {"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}],
                   "ports": [{"protocol": "TCP", "port": 3389}]}
    assert storage == {"to": [{"ipBlock": {"cidr": "10.50.0.10/32"}}],
                       "ports": [{"protocol": "TCP", "port": 9000},
                                 {"protocol": "TCP", "port": 443}]}
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert dns == {"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def test_network_policy_namespaces_override_watch_namespaces(tmp_path: Path):
    values = {"networkPolicy": {**POLICY_ON["networkPolicy"], "namespaces": ["rec"]}}
    docs = template(tmp_path, values)
    assert [p["metadata"]["namespace"] for p in docs if p["kind"] == "NetworkPolicy"] == ["rec"]


def test_network_policy_without_namespaces_fails_clearly(tmp_path: Path):
    error = template_error(tmp_path, POLICY_ON)
    assert "networkPolicy.enabled=true needs the namespaces where sessions run" in error


def test_network_policy_enabled_alone_says_what_to_set(tmp_path: Path):
    error = template_error(tmp_path, {"networkPolicy": {"enabled": True}})
    # Not a schema error ("minItems: got 0"): a message naming every value still missing.
    assert "schema" not in error, error
    assert "networkPolicy.enabled=true needs the addresses recorder pods may reach" in error
    for value in ("networkPolicy.rdpTargetCIDRs", "networkPolicy.storageCIDRs",
                  "networkPolicy.apiServerCIDRs", "networkPolicy.namespaces"):
        assert f"set {value}" in error or f"; {value}" in error, (value, error)
    assert "kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes" \
        in error
    # Only what is still missing is named.
    partial = template_error(tmp_path, {"networkPolicy": {
        "enabled": True, "namespaces": ["a"], "rdpTargetCIDRs": ["10.40.0.0/16"],
        "apiServerCIDRs": ["10.0.0.1/32"]}})
    assert "networkPolicy.storageCIDRs" in partial
    assert "rdpTargetCIDRs" not in partial and "apiServerCIDRs" not in partial
    assert "namespaces" not in partial


# --- resources -----------------------------------------------------------------------------


def test_recorder_ephemeral_storage_reaches_every_recorder_pod(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    resources = {"requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
                 "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "2Gi"}}
    env = env_of(template(tmp_path, {"recorder": {"resources": resources}}))
    assert env["LUCID_RECORDER_EPHEMERAL_STORAGE_REQUEST"] == "1Gi"
    assert env["LUCID_RECORDER_EPHEMERAL_STORAGE_LIMIT"] == "2Gi"
    for name in OperatorSettings.model_fields:
        monkeypatch.delenv(f"LUCID_{name.upper()}", raising=False)
    for name, value in env.items():
        # Values only: LUCID_OPERATOR_NAMESPACE comes from the downward API in a pod.
        if name.startswith("LUCID_") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    spec = RecordingSessionSpec.model_validate({
        "target": {"host": "rdp", "credentialsSecretRef": {"name": "rdp"}},
        "storage": {"endpoint": "minio:9000", "bucket": "recordings",
                    "credentialsSecretRef": {"name": "s3"}},
        "encryption": {"recipientPublicKeySecretRef": {"name": "key"}}})
    pod = recorder_pod(SessionRef("ns", "s", "uid"), spec, OperatorSettings())
    assert pod["spec"]["containers"][0]["resources"] == resources
    # Without the value, no ephemeral-storage at all (not an empty string).
    assert not {k for k in env_of(template(tmp_path)) if "EPHEMERAL" in k}


@pytest.mark.parametrize(("values", "messages"), [
    ({"recorder": {"resources": {"requests": {"cpu": "250m", "memory": "4Gi"}}}},
     ["recorder.resources.requests.memory (4Gi) is more than "
      "recorder.resources.limits.memory (512Mi)"]),
    ({"recorder": {"resources": {"requests": {"cpu": "1500m", "memory": "256Mi"},
                                 "limits": {"cpu": 1, "memory": "512Mi"}}}},
     ["recorder.resources.requests.cpu (1500m) is more than recorder.resources.limits.cpu (1)"]),
    ({"recorder": {"resources": {
        "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "3Gi"},
        "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "2Gi"}}},
      "operator": {"resources": {"requests": {"cpu": "2", "memory": "128Mi"},
                                 "limits": {"cpu": "1", "memory": "512Mi"}}}},
     ["recorder.resources.requests.ephemeral-storage (3Gi) is more than",
      "operator.resources.requests.cpu (2) is more than operator.resources.limits.cpu (1)"]),
], ids=["memory", "cpu", "ephemeral-and-operator"])
def test_requests_above_limits_are_refused_readably(tmp_path: Path, values: dict[str, Any],
                                                    messages: list[str]):
    error = template_error(tmp_path, values)
    assert "these values cannot work" in error, error
    for message in messages:
        assert message in error, error
    assert "Kubernetes refuses a pod whose request exceeds its limit" in error


@pytest.mark.parametrize(("request_", "limit"), [
    ("500m", "0.5"), ("1024Mi", "1Gi"), ("1", "1000m"), ("1.5Gi", "1536Mi"), ("999M", "1G"),
    ("1k", "1Ki")])
def test_requests_up_to_their_limits_pass(tmp_path: Path, request_: str, limit: str):
    template(tmp_path, {"recorder": {"resources": {
        "requests": {"cpu": request_, "memory": request_},
        "limits": {"cpu": limit, "memory": limit}}}})


def test_service_monitor_scrapes_operator_and_recorders(tmp_path: Path):
    docs = template(tmp_path, {"serviceMonitor": {"enabled": True, "labels": {"release": "p"}}})
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090,
                                         "targetPort": "metrics"}]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "p"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pod_monitor = one(docs, "PodMonitor")
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    selector = pod_monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels(SessionRef("ns", "s", "uid")).items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_features_are_off_by_default(tmp_path: Path):
    docs = template(tmp_path)
    assert not {"NetworkPolicy", "ServiceMonitor", "PodMonitor", "Service"} & set(kinds(docs))


def test_example_production_values_render(tmp_path: Path):
    docs = template(tmp_path, None, "-f", str(REPO / "examples" / "values-production.yaml"))
    assert {"NetworkPolicy", "ServiceMonitor", "PodMonitor", "KopfPeering",
            "PodDisruptionBudget"} <= set(kinds(docs))


# --- values schema -------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "message"), [
    ({"operator": {"logLevel": "LOUD"}},
     "at '/operator/logLevel': value must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
    ({"operator": {"replicas": -1}}, "at '/operator/replicas': minimum: got -1, want 0"),
    ({"operator": {"healthPort": 70000}}, "at '/operator/healthPort': maximum"),
    ({"operater": {"replicas": 2}}, "additional properties 'operater' not allowed"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "at '/operator/watchNamespaces/0'"),
    ({"recorder": {"command": []}}, "at '/recorder/command': minItems: got 0, want 1"),
    ({"recorder": {"command": ["a,b"]}}, "at '/recorder/command/0'"),
    ({"recorder": {"resources": {"limits": {"cpu": "1", "memory": "lots"}}}},
     "at '/recorder/resources/limits/memory'"),
    ({"recorder": {"terminationGraceSeconds": 1}},
     "at '/recorder/terminationGraceSeconds': minimum: got 1, want 5"),
    ({"recorder": {"resources": {"limits": {"cpu": "1", "memory": "1Gi", "disk": "1Gi"}}}},
     "at '/recorder/resources/limits': additional properties 'disk' not allowed"),
    ({"networkPolicy": {**POLICY_ON["networkPolicy"], "storageCIDRs": ["minio.local"]}},
     "at '/networkPolicy/storageCIDRs/0'"),
    ({"serviceMonitor": {"enabled": "yes"}}, "at '/serviceMonitor/enabled'"),
], ids=lambda v: str(v)[:40])
def test_schema_rejects_bad_values_naming_the_path(tmp_path: Path, values: dict[str, Any],
                                                   message: str):
    error = template_error(tmp_path, values)
    assert "values don't meet the specifications of the schema" in error, error
    assert message in error, error


def test_a_delete_timeout_within_the_grace_period_is_refused_readably(tmp_path: Path):
    error = template_error(tmp_path, {"operator": {"deleteTimeoutSeconds": 60},
                                      "recorder": {"terminationGraceSeconds": 60}})
    assert ("operator.deleteTimeoutSeconds (60) must exceed recorder.terminationGraceSeconds "
            "(60)") in error, error
    assert "set operator.deleteTimeoutSeconds to at least 70" in error, error


def test_scoped_credentials_add_only_secret_create_update_and_configmap_create(
        tmp_path: Path):
    docs = template(tmp_path, {"operator": {"storageStsRoleArn": "arn:aws:iam::1:role/rec"}})
    main = one(docs, "ClusterRole", FULLNAME)
    secret_verbs = {v for g, r, v in all_grants(main) if r == "secrets"}
    assert secret_verbs == {"get", "create", "update"}  # never list or watch
    # The resume points are created, never read back, listed or changed.
    assert {v for g, r, v in all_grants(main) if r == "configmaps"} == {"create"}
    assert all_grants(main) - SCOPED_NEEDED == NEEDED
    shared = one(template(tmp_path, {"operator": {"storageScopedCredentials": False}}),
                 "ClusterRole", FULLNAME)
    assert all_grants(shared) == NEEDED  # without them, Secrets are only read
    env = env_of(docs)
    assert env["LUCID_STORAGE_SCOPED_CREDENTIALS"] == "true"
    assert env["LUCID_STORAGE_CREDENTIALS_DURATION_SECONDS"] == "3600"
    assert env["LUCID_STORAGE_STS_ROLE_ARN"] == "arn:aws:iam::1:role/rec"
