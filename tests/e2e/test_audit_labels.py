"""spec.audit mirrored into labels: `kubectl get -l lucid.dev/project=...` (issue 16, item 4).

The real operator (with the stand-in recorder) keeps lucid.dev/project and
lucid.dev/environment on the session and its recorder pod in step with the spec: set at
creation, changed with the spec, removed when a field is cleared. The owner is free text
and never becomes a label.
"""

from __future__ import annotations

import json

import pytest

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.proc import StackError
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack

PROJECT, ENVIRONMENT = "lucid.dev/project", "lucid.dev/environment"


def _names(sessions: Sessions, kind: str, selector: str) -> list[str]:
    done = sessions.stack.kubectl("get", kind, "-n", sessions.namespace, "-l", selector,
                                  "-o", "name")
    return done.stdout.split()


def _labels(sessions: Sessions, kind: str, name: str) -> dict[str, str]:
    done = sessions.stack.kubectl("get", kind, name, "-n", sessions.namespace,
                                  "-o", "jsonpath={.metadata.labels}")
    return json.loads(done.stdout or "{}")


def _audit_labels(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k in (PROJECT, ENVIRONMENT)}


def _in_step(sessions: Sessions, pod: str, wanted: dict[str, str]) -> bool:
    return all(_audit_labels(_labels(sessions, kind, name)) == wanted
               for kind, name in (("rsess", "audited"), ("pod", pod)))


def test_audit_fields_are_labels_kept_in_step(operator: OperatorProcess, sessions: Sessions):
    stack, ns = sessions.stack, sessions.namespace
    sessions.apply(sessions.manifest("audited", audit={
        "owner": "Alice Example <alice@example.com>", "project": "payroll",
        "environment": "prod"}))
    sessions.wait_phase("audited", "Recording")
    pod = "audited-recorder-0"

    found = stack.kubectl("get", "rsess", "-n", ns, "-l", f"{PROJECT}=payroll").stdout
    print(f"$ kubectl get rsess -l {PROJECT}=payroll\n{found}")
    assert found.splitlines()[1].startswith("audited ")
    assert _names(sessions, "rsess", f"{ENVIRONMENT}=prod") == [
        "recordingsession.lucid.dev/audited"]
    assert _names(sessions, "pods", f"{PROJECT}=payroll,{ENVIRONMENT}=prod") == [f"pod/{pod}"]
    # The owner is not a label value (spaces, '@', '<'): never copied into one.
    for kind, name in (("rsess", "audited"), ("pod", pod)):
        assert not any("alice" in v.lower() for v in _labels(sessions, kind, name).values())

    # An edited project moves both labels; the old selector finds nothing any more.
    stack.kubectl("patch", "rsess", "audited", "-n", ns, "--type=merge",
                  "-p", '{"spec":{"audit":{"project":"hr"}}}')
    wait_for(lambda: _in_step(sessions, pod, {PROJECT: "hr", ENVIRONMENT: "prod"}), 30,
             "project label hr on the session and its pod")
    assert _names(sessions, "rsess", f"{PROJECT}=payroll") == []
    assert _names(sessions, "pods", f"{PROJECT}=hr") == [f"pod/{pod}"]

    # A cleared field removes its label.
    stack.kubectl("patch", "rsess", "audited", "-n", ns, "--type=json",
                  "-p", '[{"op":"remove","path":"/spec/audit/environment"}]')
    wait_for(lambda: _in_step(sessions, pod, {PROJECT: "hr"}), 30,
             "environment label removed from the session and its pod")
    events = wait_for(lambda: [e for e in sessions.events("audited")
                               if e["reason"] == "AuditLabelsUpdated"], 30,
                      "AuditLabelsUpdated events")
    messages = [e["message"] for e in events]
    print(messages)
    assert any(f"{ENVIRONMENT} removed" in m for m in messages), messages
    assert any(f"{PROJECT}=hr" in m for m in messages), messages

    # A value that cannot be a label is refused, saying why; the session records on.
    with pytest.raises(StackError) as refused:
        stack.kubectl("patch", "rsess", "audited", "-n", ns, "--type=merge",
                      "-p", '{"spec":{"audit":{"project":"Payroll 2024"}}}')
    print(refused.value)
    assert ("spec.audit.project: Invalid value: project becomes the label "
            "lucid.dev/project, so it must be a label value: at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit") in str(refused.value)
    assert _in_step(sessions, pod, {PROJECT: "hr"})
    assert sessions.status("audited")["phase"] == "Recording"

    # The whole audit removed: no audit label left anywhere.
    stack.kubectl("patch", "rsess", "audited", "-n", ns, "--type=json",
                  "-p", '[{"op":"remove","path":"/spec/audit"}]')
    wait_for(lambda: _in_step(sessions, pod, {}), 30, "every audit label removed")


def test_a_session_whose_project_is_no_label_value_is_refused(sessions: Sessions):
    manifest = sessions.manifest("badly-audited", audit={"project": "payroll/eu",
                                                        "environment": "-prod"})
    with pytest.raises(StackError) as refused:
        sessions.apply(manifest)
    print(refused.value)
    for field in ("project", "environment"):
        assert (f"spec.audit.{field}: Invalid value: {field} becomes the label "
                f"lucid.dev/{field}, so it must be a label value") in str(refused.value)
    assert sessions.get("badly-audited") is None
