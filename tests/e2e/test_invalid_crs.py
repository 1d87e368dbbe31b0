"""Invalid RecordingSessions, generated from the CRD's own schema, against the real apiserver.

Every field of the generated openAPIV3Schema is walked and broken in the ways its
schema forbids (wrong type, out of range, too long, off-pattern, off-enum,
missing, unknown, too many items, a violated CEL rule), plus whole-document
junk. Each document goes to the local stack's kube-apiserver as a server-side
dry-run create with fieldValidation=Strict, and to the pydantic models the
operator parses specs with. The two must agree; a rejection must be a 400/422
whose message names the broken field. What the schema cannot know (the
operator's default resource limits) is left to the operator, which must say so
on the session and keep reconciling others.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from lucid_common.api import GROUP, PLURAL, VERSION, RecordingSessionSpec
from lucid_devstack.operator_proc import OperatorProcess
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "crds" / f"{PLURAL}.{GROUP}.yaml").read_text())
ROOT_SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA: dict[str, Any] = ROOT_SCHEMA["properties"]["spec"]
INT64_MAX = 2**63 - 1
REQUEST_TIMEOUT = 30

Path_ = tuple[str | int, ...]
_DELETE = object()  # the mutation removes the field instead of setting it


# --- the base document: valid, and with every optional object present -------------------


def full_spec(sessions: Sessions) -> dict[str, Any]:
    """A valid spec in which every path of the schema that can coexist is present."""
    spec = sessions.manifest("x")["spec"]
    spec["target"]["domain"] = "CORP"
    spec["recording"] = {"maxFps": 5, "desktop": {"width": 800, "height": 600, "colorDepth": 24},
                         "keyframeIntervalSeconds": 10}
    spec["chunking"] = {"maxSeconds": 30, "maxBytes": 1 << 20}
    spec["compression"] = {"codec": "zstd", "level": 3}
    spec["storage"].update(keyPrefix="e2e/invalid", createBucket=True)
    spec["audit"] = {"owner": "alice", "project": "payroll", "environment": "prod"}
    spec["maxDurationSeconds"] = 600
    spec["recorderPod"] = {
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
                      "limits": {"cpu": 1, "memory": "256Mi", "ephemeral-storage": "2Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "rec",
                         "effect": "NoExecute", "tolerationSeconds": 30}],
    }
    return spec


# --- walking the schema ------------------------------------------------------------------


def walk(node: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, dict[str, Any]]]:
    """Every schema node under `node` with its path; array items at index 0, map values at 'k'."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, (*path, name))
    if "items" in node:
        yield from walk(node["items"], (*path, 0))
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], (*path, "k"))


def kind_of(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    if node.get("type") == "object" and "additionalProperties" in node:
        return "map"
    return str(node["type"])


def render(path: Path_) -> str:
    """A path as the apiserver prints it: spec.recorderPod.tolerations[0].key."""
    out = "spec"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def get_at(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def set_at(spec: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """A copy of `spec` with `value` at `path`, creating missing objects on the way."""
    spec = copy.deepcopy(spec)
    parent: Any = spec
    for part in path[:-1]:
        if isinstance(part, int):
            parent = parent[part]
        else:
            parent = parent.setdefault(part, {})
            if not isinstance(parent, dict | list):
                raise AssertionError(f"base spec has a scalar on the way to {render(path)}")
    if value is _DELETE:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return spec


# --- the violations each kind of node admits -----------------------------------------------

WRONG_TYPES: dict[str, list[Any]] = {
    "integer": ["7", True, 1.5, [], {}],
    "string": [7, False, ["a"], {"a": "b"}],
    "boolean": ["true", 1, 0, [], {}],
    "object": ["x", 3, [1], True],
    "map": ["x", 3, ["a"]],
    "array": ["x", 3, {"a": 1}],
    "int-or-string": [True, 0.5, ["1"], {"a": 1}],
}


@dataclass(frozen=True)
class Case:
    """One broken document: `value` put at `path` of an otherwise valid spec."""

    what: str
    path: Path_
    value: Any

    def spec(self, base: dict[str, Any]) -> dict[str, Any]:
        return set_at(base, self.path, self.value)

    def __str__(self) -> str:
        shown = "<deleted>" if self.value is _DELETE else json.dumps(self.value)[:60]
        return f"{self.what} at {render(self.path)} = {shown}"


def definite_violations(base: dict[str, Any]) -> Iterator[Case]:
    """For every field, each violation its schema rules out, with a fixed value."""
    for path, node in walk(SPEC_SCHEMA):
        if not path:
            continue
        kind = kind_of(node)
        for value in WRONG_TYPES[kind]:
            yield Case("wrong type", path, value)
        if kind == "integer":
            if "minimum" in node:
                yield Case("below minimum", path, node["minimum"] - 1)
            if "maximum" in node:
                yield Case("above maximum", path, node["maximum"] + 1)
            yield Case("beyond int64", path, INT64_MAX + 1)
            if "enum" in node:
                yield Case("not in enum", path, max(node["enum"]) + 1)
        if kind == "string":
            if "maxLength" in node:
                yield Case("too long", path, "a" * (node["maxLength"] + 1))
            if node.get("minLength", 0) > 0:
                yield Case("too short", path, "")
            if "enum" in node:
                yield Case("not in enum", path, str(node["enum"][0]).lower() + "x")
            elif "pattern" in node:
                yield Case("off pattern", path, "Bad Value!\n")
        if kind == "int-or-string":
            yield Case("negative", path, -1)
            yield Case("off pattern", path, "lots")
        if kind in ("object", "map") and "properties" in node:
            yield Case("unknown field", (*path, "unexpectedField"), "x")
            for name in node.get("required", []):
                yield Case("missing required", (*path, name), _DELETE)
        if kind == "map" and "maxProperties" in node:
            yield Case("too many entries", path,
                       {f"k{i}": "v" for i in range(node["maxProperties"] + 1)})
        if kind == "array" and "maxItems" in node:
            item = get_at(base, (*path, 0))
            yield Case("too many items", path, [item] * (node["maxItems"] + 1))
    for name in SPEC_SCHEMA.get("required", []):
        yield Case("missing required", (name,), _DELETE)
    yield Case("unknown field", ("unexpectedField",), 1)


# --- submitting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    status: int
    message: str
    stored: dict[str, Any] | None = None


def dry_run_create(api: client.ApiClient, namespace: str, body: Any,
                   field_validation: str = "Strict") -> Verdict:
    custom = client.CustomObjectsApi(api)
    try:
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All",
            field_validation=field_validation, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        message = json.loads(exc.body).get("message", "") if exc.body else str(exc)
        return Verdict(False, exc.status, message)
    return Verdict(True, 201, "", created)


def document(namespace: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RecordingSession",
            "metadata": {"name": "invalid", "namespace": namespace}, "spec": spec}


def pydantic_errors(spec: Any) -> list[Path_] | None:
    """The locations the models object to, or None when they accept the spec."""
    try:
        RecordingSessionSpec.model_validate(spec)
    except ValidationError as exc:
        return [tuple(error["loc"]) for error in exc.errors()]
    return None


def names(loc: Path_, path: Path_) -> bool:
    """The error location is the field, inside it, or in the object holding it.

    The object counts because a CEL rule or a required sibling (a null `key` of a
    new caSecretRef leaves `name` missing) is reported there.
    """
    holder = path[:-1]
    return bool(loc) and (loc[:len(holder)] == holder or holder[:len(loc)] == loc)


SCHEMA_NODES: dict[Path_, dict[str, Any]] = dict(walk(SPEC_SCHEMA))


def rule_holders(path: Path_) -> list[Path_]:
    """The ancestors of `path` that carry CEL rules (x-kubernetes-validations)."""
    return [path[:k] for k in range(len(path) - 1, 0, -1)
            if "x-kubernetes-validations" in SCHEMA_NODES.get(path[:k], {})]


def check(api: client.ApiClient, namespace: str, base: dict[str, Any], case: Case,
          expect_rejected: bool) -> Verdict:
    spec = case.spec(base)
    verdict = dry_run_create(api, namespace, document(namespace, spec))
    errors = pydantic_errors(spec)
    if verdict.accepted:
        assert not expect_rejected, f"apiserver accepted {case}"
        assert errors is None, (
            f"models reject what the apiserver accepts: {case}: {errors}")
        return verdict
    assert verdict.status in (400, 422), f"{case}: HTTP {verdict.status}: {verdict.message}"
    assert render(case.path) in verdict.message or (
        # A CEL rule or a missing key is reported on the object holding the field.
        render(case.path[:-1]) in verdict.message) or (
        # A cross-field rule higher up (requests within limits) names the object it lives on.
        any(render(holder) in verdict.message for holder in rule_holders(case.path))
    ), f"{case}: path not named: {verdict.message}"
    assert "\n" not in verdict.message.strip() and "goroutine" not in verdict.message
    assert errors is not None, (
        f"models accept what the apiserver rejects: {case}: {verdict.message}")
    assert any(names(loc, case.path) for loc in errors), (
        f"{case}: models name {errors}, not {render(case.path)}")
    return verdict


@pytest.fixture
def base(sessions: Sessions) -> dict[str, Any]:
    spec = full_spec(sessions)
    assert pydantic_errors(spec) is None
    verdict = dry_run_create(sessions.api, sessions.namespace, document(sessions.namespace, spec))
    assert verdict.accepted, verdict.message
    return spec


# --- the tests -------------------------------------------------------------------------------


def test_every_field_violation_is_rejected_naming_the_field(sessions: Sessions,
                                                            base: dict[str, Any]) -> None:
    cases = list(definite_violations(base))
    fields = {c.path for c in cases}
    assert len(fields) >= 60 and len(cases) >= 250, (len(fields), len(cases))
    for case in cases:
        check(sessions.api, sessions.namespace, base, case, expect_rejected=True)


# Hypothesis: values *near* the rules, whose validity is not known in advance; the
# apiserver and the models must agree on each, and a rejection must name the field.

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_HOSTILE = st.sampled_from(["", " ", "\n", "\t", "/", ".", "-", "_", ":", "..", "A", "é", "\x00",
                            "\x7f", "😀", "'", '"', "\\", "$", "*"])


def near_miss(node: dict[str, Any], current: Any) -> st.SearchStrategy[Any]:
    """Values around what `node` allows: edits of the valid value, bounds, other types."""
    kind = kind_of(node)
    anything = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False),
                         _TEXT, st.lists(st.integers(), max_size=2))
    if kind == "integer":
        low, high = node.get("minimum", -INT64_MAX - 1), node.get("maximum", INT64_MAX)
        return st.one_of(
            st.integers(low - 3, low + 3), st.integers(high - 3, high + 3),
            st.integers(-2**64, 2**64), st.sampled_from([float(low), float(high), 2.0**53,
                                                         2.0**60, -0.0, float(low) + 0.5]),
            st.integers(low, min(high, low + 100)).map(str), anything)
    if kind in ("string", "int-or-string") and isinstance(current, str | int):
        text = str(current)
        edits = st.tuples(st.integers(0, len(text)), _HOSTILE).map(
            lambda e: text[:e[0]] + e[1] + text[e[0]:])
        longer = st.integers(0, 3).map(
            lambda n: text + "a" * (node.get("maxLength", 64) - len(text) + n))
        options = [edits, longer, _TEXT, anything]
        if "enum" in node:
            options.append(st.sampled_from(node["enum"]).map(
                lambda v: st.sampled_from([v.lower(), v.upper(), f" {v}", f"{v} "])).flatmap(
                lambda s: s))
        if kind == "int-or-string":
            options += [st.integers(-2, 2**64), st.sampled_from(
                ["1e3", "1e999", "1e1000", "1e1.5", "1.", ".5", "1Ki", "1k", "1K", "1e+", "0x10",
                 "1 ", "+1", "-1", "1E-3", "500m", "1.5Gi"])]
        return st.one_of(*options)
    if kind == "boolean":
        return st.one_of(st.booleans(), st.sampled_from(["true", "false", 1, 0]), anything)
    return anything


def valid_value(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value the node's own schema allows (CEL rules of its parent aside)."""
    kind = kind_of(node)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(node.get("minimum", 0), node.get("maximum", 10**6))
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"]).filter(
                lambda s: node.get("minLength", 0) <= len(s) <= node.get("maxLength", 253)
                and "\n" not in s)
        return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                       min_size=node.get("minLength", 0), max_size=node.get("maxLength", 20))
    if kind == "object" and "properties" in node:
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {name: valid_value(sub) for name, sub in node["properties"].items()
             if name in required},
            optional={name: valid_value(sub) for name, sub in node["properties"].items()
                      if name not in required})
    if kind == "map":
        return st.dictionaries(st.sampled_from(["a", "kubernetes.io/os", "bad key", "-x",
                                                "a" * 64, "example.com/zone"]),
                               valid_value(node["additionalProperties"]), max_size=3)
    if kind == "array":
        return st.lists(valid_value(node["items"]), max_size=2)
    return st.integers(0, 8) | st.sampled_from(["500m", "1Gi"])


FIELDS = [(path, node) for path, node in walk(SPEC_SCHEMA) if path]
# Objects with CEL rules that need no old object: recombining their fields breaks them.
CEL_OBJECTS = [(path, node) for path, node in FIELDS
               if any("oldSelf" not in rule["rule"]
                      for rule in node.get("x-kubernetes-validations", []))]


@st.composite
def hostile_cases(draw: st.DrawFn, base: dict[str, Any]) -> Case:
    family = draw(st.sampled_from(["near-miss", "near-miss", "null", "cel"]))
    if family == "cel":
        path, node = draw(st.sampled_from(CEL_OBJECTS))
        return Case("recombined for a CEL rule", path, draw(valid_value(node)))
    path, node = draw(st.sampled_from(FIELDS))
    if family == "null":
        return Case("null", path, None)
    try:
        current = get_at(base, path)
    except (KeyError, IndexError):
        current = None
    return Case("near miss", path, draw(near_miss(node, current)))


@dataclass
class Tally:
    accepted: int = 0
    rejected: int = 0


def run_hypothesis(sessions: Sessions, base: dict[str, Any], examples: int) -> Tally:
    tally = Tally()

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=hostile_cases(base))
    def agree(case: Case) -> None:
        verdict = check(sessions.api, sessions.namespace, base, case, expect_rejected=False)
        if verdict.accepted:
            tally.accepted += 1
        else:
            tally.rejected += 1

    agree()
    return tally


def test_generated_documents_get_the_same_verdict_from_apiserver_and_models(
        sessions: Sessions, base: dict[str, Any]) -> None:
    started = time.monotonic()
    tally = run_hypothesis(sessions, base, examples=150)
    # Both outcomes must occur, or the generator only tests one side of the rules.
    assert tally.rejected >= 50 and tally.accepted >= 10, tally
    print(f"\n150 generated documents in {time.monotonic() - started:.1f}s: {tally}")


@pytest.mark.slow
def test_many_generated_documents_agree(sessions: Sessions, base: dict[str, Any]) -> None:
    tally = run_hypothesis(sessions, base, examples=2000)
    assert tally.rejected >= 500 and tally.accepted >= 100, tally


JUNK: list[tuple[str, Callable[[dict[str, Any]], Any], int, str]] = [
    ("spec is a list", lambda d: d.update(spec=[1, 2]), 422, "spec in body must be of type object"),
    ("spec is a string", lambda d: d.update(spec="record"), 422,
     "spec in body must be of type object"),
    ("spec is a number", lambda d: d.update(spec=3), 422, "spec in body must be of type object"),
    ("spec is null", lambda d: d.update(spec=None), 422, "spec: Required value"),
    ("spec is empty", lambda d: d.update(spec={}), 422, "spec.target: Required value"),
    ("spec is missing", lambda d: d.pop("spec") and None, 422, "spec: Required value"),
    ("metadata is a list", lambda d: d.update(metadata=[]), 400,
     "cannot unmarshal array into Go value of type v1.ObjectMeta"),
    ("kind is wrong", lambda d: d.update(kind="Pod"), 422, 'kind: Invalid value: "Pod"'),
    ("document is a list", lambda d: [d], 400, "RecordingSession"),
    ("document is a string", lambda d: "kind: RecordingSession", 400, "RecordingSession"),
]


@pytest.mark.parametrize(("mutate", "status", "expected"),
                         [pytest.param(m, s, e, id=name) for name, m, s, e in JUNK])
def test_whole_document_junk_is_rejected_readably(sessions: Sessions, mutate: Callable,
                                                  status: int, expected: str) -> None:
    body = document(sessions.namespace, full_spec(sessions))
    body = mutate(body) or body
    verdict = dry_run_create(sessions.api, sessions.namespace, body)
    assert not verdict.accepted and verdict.status == status, verdict
    assert "\n" not in verdict.message
    assert expected in verdict.message, verdict.message
    spec = body.get("spec") if isinstance(body, dict) else None
    if isinstance(body, dict) and expected.startswith("spec"):
        # What the operator does with it: reconcile.parse_spec reads a null spec as {}.
        assert pydantic_errors(spec or {}) is not None


def test_status_in_a_create_is_dropped(sessions: Sessions) -> None:
    # With the status subresource, a create ignores whatever status it carries,
    # junk included: the operator is the only writer of status.
    body = document(sessions.namespace, full_spec(sessions))
    body["status"] = "done"
    verdict = dry_run_create(sessions.api, sessions.namespace, body)
    assert verdict.accepted and verdict.stored is not None
    assert "status" not in verdict.stored


def test_unknown_fields_are_refused_by_kubectl_and_pruned_without_validation(
        sessions: Sessions, base: dict[str, Any]) -> None:
    manifest = document(sessions.namespace, set_at(base, ("target", "passwrd"), "hunter2"))
    manifest["metadata"]["name"] = "typo"
    refused = sessions.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest),
                                     check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.target.passwrd"' in refused.stderr
    assert sessions.get("typo") is None
    # --validate=false is the apiserver's Ignore: the field is pruned, not stored. (Use
    # create: `kubectl apply` would keep the raw manifest, typo and all, in its
    # last-applied-configuration annotation.)
    sessions.stack.kubectl("create", "--validate=false", "-f", "-",
                           input_text=yaml.safe_dump(manifest))
    stored = sessions.get("typo")
    assert stored is not None and "passwrd" not in stored["spec"]["target"]
    assert "hunter2" not in json.dumps(stored)
    # The models refuse the typo but accept what was stored, as the operator reads it.
    assert pydantic_errors(manifest["spec"]) == [("target", "passwrd")]
    assert pydantic_errors(stored["spec"]) is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("storage", {"bucket": "elsewhere"}, "storage is immutable"),
    ("encryption", {"recipientPublicKeySecretRef": {"name": "other-key"}},
     "encryption is immutable"),
])
def test_storage_and_encryption_are_immutable(sessions: Sessions, field: str,
                                              value: dict[str, Any], message: str) -> None:
    # tests/test_operator_bad_input.py covers target and a Stopped restart.
    sessions.apply(sessions.manifest("fixed", state="Stopped"))
    moved = sessions.manifest("fixed", state="Stopped")
    moved["spec"][field] = {**moved["spec"][field], **value}
    done = sessions.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(moved),
                                  check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert f"spec.{field}" in done.stderr


@pytest.mark.parametrize(("retention", "message"), [
    ({"mode": "Compliance", "duration": "1d"}, "retention is immutable"),
    ({"mode": "Governance", "duration": "30d"}, "retention is immutable"),
    (None, "retention cannot be added to or removed from a session once created"),
])
def test_retention_cannot_be_shortened_weakened_or_removed(
        sessions: Sessions, retention: dict[str, Any] | None, message: str) -> None:
    sessions.apply(sessions.manifest("kept", state="Stopped",
                                     retention={"mode": "Compliance", "duration": "30d"}))
    edited = sessions.manifest("kept", state="Stopped")
    if retention is not None:
        edited["spec"]["retention"] = retention
    done = sessions.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(edited),
                                  check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert sessions.get("kept")["spec"]["retention"] == {"mode": "Compliance",
                                                         "duration": "30d"}


@pytest.mark.parametrize(("resource", "wanted", "limit"), [
    ("cpu", 2, "500m"),
    ("memory", "4Gi", "512Mi"),
    ("ephemeral-storage", "2Gi", "1500M"),
])
def test_requests_above_limits_are_rejected_readably(sessions: Sessions, resource: str,
                                                     wanted: Any, limit: str) -> None:
    # Kubernetes would refuse the recorder pod; the CRD says so when the session is applied.
    manifest = sessions.manifest("greedy")
    manifest["spec"]["recorderPod"] = {"resources": {"requests": {resource: wanted},
                                                     "limits": {resource: limit}}}
    done = sessions.stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest),
                                  check=False)
    assert done.returncode != 0, done.stdout
    print(done.stderr)
    assert (f"requests.{resource} must not exceed limits.{resource}: Kubernetes refuses a pod "
            "whose request is above its limit") in done.stderr, done.stderr
    assert "spec.recorderPod.resources.requests" in done.stderr, done.stderr
    assert sessions.get("greedy") is None
    errors = pydantic_errors(manifest["spec"])
    assert errors is not None and any(loc[:2] == ("recorderPod", "resources") for loc in errors)
    # Equal is what Kubernetes allows (a Guaranteed pod).
    manifest["spec"]["recorderPod"]["resources"]["limits"][resource] = wanted
    assert dry_run_create(sessions.api, sessions.namespace,
                          document(sessions.namespace, manifest["spec"])).accepted
    assert pydantic_errors(manifest["spec"]) is None


def test_operator_rejects_what_the_schema_cannot_know_and_keeps_going(
        operator: OperatorProcess, sessions: Sessions, base: dict[str, Any]) -> None:
    # A handful of real creates of broken documents: refused, nothing stored.
    for number, case in enumerate(list(definite_violations(base))[::40]):
        manifest = document(sessions.namespace, case.spec(base))
        manifest["metadata"]["name"] = f"broken-{number}"
        done = sessions.stack.kubectl("create", "-f", "-", input_text=json.dumps(manifest),
                                      check=False)
        assert done.returncode != 0, f"created {case}"
        assert sessions.get(f"broken-{number}") is None
    # Accepted oddities the apiserver normalises (null pruned, 2.0 is 2): they must record.
    odd = sessions.manifest("odd")
    odd["spec"]["target"]["domain"] = None
    odd["spec"]["recording"] = {"maxFps": 5.0, "desktop": None}
    odd["spec"]["recorderPod"] = {"resources": {"limits": {"cpu": 2.0}}}
    sessions.stack.kubectl("create", "-f", "-", input_text=json.dumps(odd))
    # The CRD cannot know the operator's default limits (cpu 1 here): a request above
    # them makes a pod the apiserver refuses. The operator must say so, not crash.
    greedy = sessions.manifest("greedy")
    greedy["spec"]["recorderPod"] = {"resources": {"requests": {"cpu": "8"}}}
    sessions.apply(greedy)
    ready = wait_for(lambda: (c := sessions.condition("greedy", "Ready"))
                     and c["status"] == "False" and c.get("reason") == "PodRejected" and c,
                     60, "greedy: Ready=False PodRejected")
    assert "must be less than or equal to cpu limit" in ready["message"]
    assert "\n" not in ready["message"]
    assert any(e["reason"] == "PodRejected" and "cpu limit" in e["message"]
               for e in sessions.events("greedy"))
    # A configuration no retry gets past is Degraded (Argo CD shows it so), not Pending only.
    degraded = sessions.condition("greedy", "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "PodRejected", degraded
    assert "must be less than or equal to cpu limit" in degraded["message"]
    assert sessions.pods("greedy") == []
    sessions.wait_phase("odd", "Recording", timeout=60)
    # Still alive, and still reconciling a valid session.
    assert operator.proc is not None and operator.proc.running
    sessions.apply(sessions.manifest("after"))
    sessions.wait_phase("after", "Recording", timeout=60)
    assert operator.proc.running
