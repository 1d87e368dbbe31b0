"""What a user sees with kubectl: get columns, describe events, explain docs, example dry runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lucid_common.api import CRD_NAME
from lucid_devstack.stack import Stack
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ARGOCD_CM = REPO / "deploy" / "argocd" / "argocd-cm.yaml"

# Argo CD is not installed here. This stand-in of its Application CRD checks what a dry run
# of examples/argocd-application.yaml can: the kind, and the spec fields the example uses,
# with Argo CD's required ones. Argo CD's full schema is its own business.
ARGOCD_APPLICATION_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.argoproj.io}
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: Application, plural: applications, singular: application, shortNames: [app]}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [destination, project]
              properties:
                project: {type: string}
                destination:
                  type: object
                  properties:
                    server: {type: string}
                    name: {type: string}
                    namespace: {type: string}
                source:
                  type: object
                  required: [repoURL]
                  properties:
                    repoURL: {type: string}
                    targetRevision: {type: string}
                    path: {type: string}
                    chart: {type: string}
                    helm: {type: object, x-kubernetes-preserve-unknown-fields: true}
                    kustomize: {type: object, x-kubernetes-preserve-unknown-fields: true}
                    directory: {type: object, x-kubernetes-preserve-unknown-fields: true}
                sources:
                  type: array
                  items: {type: object, x-kubernetes-preserve-unknown-fields: true}
                syncPolicy:
                  type: object
                  properties:
                    automated:
                      type: object
                      properties:
                        prune: {type: boolean}
                        selfHeal: {type: boolean}
                        allowEmpty: {type: boolean}
                    syncOptions: {type: array, items: {type: string}}
                    retry: {type: object, x-kubernetes-preserve-unknown-fields: true}
                ignoreDifferences:
                  type: array
                  items: {type: object, x-kubernetes-preserve-unknown-fields: true}
                info:
                  type: array
                  items: {type: object, x-kubernetes-preserve-unknown-fields: true}
                revisionHistoryLimit: {type: integer}
"""


def columns(table: str) -> list[dict[str, str]]:
    """Rows of a kubectl table, cut at the header's column starts (values may hold spaces)."""
    header, *rows = table.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    return [{name: row[start:end].strip() for name, start, end in
             zip(names, starts, [*starts[1:], None], strict=True)} for row in rows]


def normalize(text: str) -> str:
    return " ".join(text.split())


def explained_fields(output: str) -> dict[str, str]:
    """FIELDS of `kubectl explain`: name -> description (the enum line left out)."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_fields = False
    for line in output.splitlines():
        if line.startswith("FIELDS:"):
            in_fields = True
            continue
        if not in_fields:
            continue
        header = re.match(r"^  ([\w-]+)\t<[^>]+>", line)
        if header:
            current = fields.setdefault(header.group(1), [])
        elif current is not None and line.startswith("    "):
            current.append(line.strip())
    return {name: normalize(" ".join(text)) for name, text in fields.items()}


def object_nodes(node: dict[str, Any], path: list[str]) -> Iterator[tuple[list[str],
                                                                         dict[str, Any]]]:
    """Every schema node with fields, with its path (arrays of objects included)."""
    props = node.get("properties") or (node.get("items") or {}).get("properties")
    if props:
        yield path, props
        for name, child in props.items():
            yield from object_nodes(child, [*path, name])


@pytest.fixture(scope="module")
def served_spec_schema(stack: Stack, crd: None) -> dict[str, Any]:
    # The API server publishes a new CRD's OpenAPI (what explain reads) a little after the
    # CRD is Established; a user running explain right after installing waits the same.
    wait_for(lambda: stack.kubectl("explain", "recordingsession", check=False).returncode == 0,
             30, "the RecordingSession OpenAPI to be published")
    served = json.loads(stack.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    (version,) = [v for v in served["spec"]["versions"] if v["storage"]]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


# --- get / describe ------------------------------------------------------------------------


def test_get_shows_informative_columns(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("ux-get"))
    sessions.wait_phase("ux-get", "Recording")
    out = sessions.stack.kubectl("get", "recordingsessions", "-n", sessions.namespace).stdout
    assert out.splitlines()[0].split() == ["NAME", "PHASE", "TARGET", "CHUNKS", "STORED",
                                           "READY", "AGE"]
    (row,) = columns(out)
    assert row["NAME"] == "ux-get" and row["PHASE"] == "Recording"
    assert row["TARGET"] == "127.0.0.1" and row["READY"] == "True"
    assert row["CHUNKS"] == "0" and row["STORED"] == "0 B"
    assert re.fullmatch(r"\d+s", row["AGE"]), row

    # The short name and the category reach it too; -o wide adds the pod and exact bytes.
    wide = sessions.stack.kubectl("get", "rsess", "-o", "wide", "-n", sessions.namespace).stdout
    (row,) = columns(wide)
    assert row["POD"] == "ux-get-recorder-0" and row["BYTES"] == "0"
    listed = sessions.stack.kubectl("get", "lucid", "-n", sessions.namespace, "-o", "name")
    assert "recordingsession.lucid.dev/ux-get" in listed.stdout


def test_get_shows_why_a_session_waits(operator, sessions: Sessions):
    manifest = sessions.manifest("ux-nosecret")
    manifest["spec"]["target"]["credentialsSecretRef"]["name"] = "absent"
    sessions.apply(manifest)
    sessions.wait_phase("ux-nosecret", "Pending")
    out = sessions.stack.kubectl("get", "rsess", "ux-nosecret", "-n", sessions.namespace).stdout
    (row,) = columns(out)
    assert row["PHASE"] == "Pending" and row["READY"] == "False"
    described = sessions.stack.kubectl("describe", "rsess", "ux-nosecret",
                                       "-n", sessions.namespace).stdout
    assert "SecretNotFound" in described and 'Secret "absent" not found' in described


def test_describe_shows_conditions_and_events(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("ux-describe"))
    sessions.wait_phase("ux-describe", "Recording")
    out = sessions.stack.kubectl("describe", "recordingsession", "ux-describe",
                                 "-n", sessions.namespace).stdout
    status, _, events = out.partition("\nEvents:")
    assert events, out
    for condition in ("ReferencesResolved", "TargetReachable", "RecorderRunning", "Ready"):
        assert re.search(rf"Type:\s+{condition}\n", status), condition
    rows = [line.split(None, 4) for line in events.strip().splitlines()[2:]]
    reasons = {row[1] for row in rows if len(row) >= 2}
    assert {"RecorderCreated", "Recording"} <= reasons, events
    created = next(row for row in rows if row[1] == "RecorderCreated")
    assert created[0] == "Normal" and "ux-describe-recorder-0" in created[4]


# --- explain -------------------------------------------------------------------------------


def test_explain_spec_documents_every_field(stack: Stack, served_spec_schema: dict[str, Any]):
    out = stack.kubectl("explain", "recordingsession.spec").stdout
    assert "KIND:       RecordingSession" in out and "VERSION:    v1alpha1" in out
    assert normalize(served_spec_schema["description"]) in normalize(out)
    fields = explained_fields(out)
    assert set(fields) == set(served_spec_schema["properties"])
    for name, prop in served_spec_schema["properties"].items():
        assert fields[name], f"spec.{name} has no description"
        assert normalize(prop["description"]) in fields[name], name


def test_explain_nested_fields_document_every_field(stack: Stack,
                                                   served_spec_schema: dict[str, Any]):
    # spec.target.tls first: the example the docs point at.
    nodes = sorted(object_nodes(served_spec_schema, ["spec"]),
                   key=lambda node: node[0] != ["spec", "target", "tls"])
    assert len(nodes) > 10
    for path, props in nodes:
        dotted = ".".join(path)
        fields = explained_fields(stack.kubectl("explain", f"recordingsession.{dotted}").stdout)
        assert set(fields) == set(props), dotted
        for name, prop in props.items():
            assert prop.get("description"), f"{dotted}.{name}: the schema has no description"
            assert normalize(prop["description"]) in fields[name], f"{dotted}.{name}"


def test_explain_recursive_lists_the_whole_spec(stack: Stack,
                                                served_spec_schema: dict[str, Any]):
    out = stack.kubectl("explain", "recordingsession.spec", "--recursive").stdout
    listed = set(re.findall(r"^\s+([\w-]+)\t<", out, flags=re.M))
    expected = {name for _, props in object_nodes(served_spec_schema, ["spec"])
                for name in props}
    assert expected <= listed, expected - listed


# --- examples: every manifest passes a server-side dry run ---------------------------------


@pytest.fixture(scope="module")
def example_namespaces(stack: Stack, crd: None) -> Iterator[None]:
    """The namespaces the examples name, created for real and removed afterwards when new."""
    created = []
    for namespace in ("lucid-demo", "argocd"):
        if stack.kubectl("create", "namespace", namespace, check=False).returncode == 0:
            created.append(namespace)
    yield
    for namespace in created:
        stack.kubectl("delete", "namespace", namespace, "--wait=false")


def dry_run(stack: Stack, *args: str) -> list[str]:
    done = stack.kubectl("apply", "--dry-run=server", "--validate=strict", *args)
    lines = done.stdout.strip().splitlines()
    assert lines and all(line.endswith("(server dry run)") for line in lines), done.stdout
    return lines


def test_every_example_manifest_passes_a_server_side_dry_run(stack: Stack,
                                                             example_namespaces: None):
    stack.kubectl("apply", "-f", "-", input_text=ARGOCD_APPLICATION_CRD)
    stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/applications.argoproj.io")
    manifests = sorted(p for p in EXAMPLES.glob("*.yaml")
                       if p.name != "kustomization.yaml" and not p.name.startswith("values"))
    assert {p.name for p in manifests} >= {"session.yaml", "namespace.yaml",
                                           "argocd-application.yaml"}
    for manifest in manifests:
        dry_run(stack, "-f", str(manifest))
    applied = dry_run(stack, "-k", str(EXAMPLES))
    assert sorted(line.split()[0] for line in applied) == sorted([
        "namespace/lucid-demo", "secret/auditor-public-key", "secret/minio-creds",
        "secret/rdp-login", "recordingsession.lucid.dev/demo"])
    # The kustomization changes names nowhere: the session finds its Secrets as written.
    rendered = stack.kubectl("kustomize", str(EXAMPLES)).stdout
    assert "name: rdp-login\n" in rendered and "name: minio-creds\n" in rendered


def test_argocd_cm_snippet_passes_a_server_side_dry_run(stack: Stack,
                                                        example_namespaces: None):
    # As the docs say to apply it: server-side, with its own field manager.
    dry_run(stack, "--server-side", "--field-manager=lucid", "-f", str(ARGOCD_CM))
