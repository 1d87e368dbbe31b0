"""The Argo CD health check (deploy/argocd/health.lua), run in Lua 5.1 like Argo CD's gopher-lua.

health.lua is the one source: deploy/argocd/argocd-cm.yaml and docs/operations.md embed it,
and the tests below fail when either copy drifts. Regenerate the snippet with

    .venv/bin/python -m tests.unit.test_argocd_health
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

# lupa is a pinned dev dependency; Argo CD runs Lua 5.1.
import lupa.lua51 as lupa
import pytest
import yaml

from lucid_operator.conditions import (
    ConditionUpdate,
    Observation,
    Phase,
    PodView,
    config_degraded,
    degraded_update,
    derive_phase,
    merge_conditions,
)

REPO = Path(__file__).resolve().parents[2]
HEALTH_LUA = REPO / "deploy" / "argocd" / "health.lua"
SNIPPET = REPO / "deploy" / "argocd" / "argocd-cm.yaml"
DOCS = REPO / "docs" / "operations.md"
CM_KEY = "resource.customizations.health.lucid.dev_RecordingSession"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def render_snippet(lua: str) -> str:
    """argocd-cm.yaml as generated from health.lua."""
    body = "".join(f"    {line}" if line.strip() else "\n" for line in lua.splitlines(True))
    return (
        "# Generated from deploy/argocd/health.lua by\n"
        "# `.venv/bin/python -m tests.unit.test_argocd_health`: edit health.lua, not this file.\n"
        "#\n"
        "# Server-side apply with its own field manager adds this one key and leaves the rest of\n"
        "# argocd-cm alone (a client-side `kubectl apply` could drop keys it did not set):\n"
        "#   kubectl apply --server-side --field-manager=lucid -f deploy/argocd/argocd-cm.yaml\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {CM_KEY}: |\n"
        f"{body}"
    )


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua as Argo CD does: `obj` is a global, the chunk returns `hs`."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return dict(result.items())


def session(status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "lucid.dev/v1alpha1", "kind": "RecordingSession",
                            "metadata": {"name": "s", "namespace": "ns", "generation": 1},
                            "spec": {"target": {"host": "10.0.0.5"}}}
    if status is not None:
        body["status"] = status
    return body


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-29T12:00:00Z", "observedGeneration": 1}


def status_from_operator(obs: Observation, *extra: ConditionUpdate) -> dict[str, Any]:
    """A status as the operator writes it, from its own pure phase logic."""
    phase, updates = derive_phase(obs)
    return {"phase": phase.value,
            "conditions": merge_conditions([], [*updates, *extra], 1, NOW)}


# --- the one source ------------------------------------------------------------------------


def test_argocd_cm_snippet_embeds_health_lua_exactly():
    expected = render_snippet(HEALTH_LUA.read_text())
    assert SNIPPET.read_text() == expected, (
        "deploy/argocd/argocd-cm.yaml is stale: run `.venv/bin/python -m tests.unit."
        "test_argocd_health`")
    # And as Argo CD will read it: the ConfigMap value is the script, byte for byte.
    parsed = yaml.safe_load(SNIPPET.read_text())
    assert parsed["metadata"] == {"name": "argocd-cm", "namespace": "argocd", "labels": {
        "app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}}
    assert parsed["data"] == {CM_KEY: HEALTH_LUA.read_text()}


def test_docs_show_the_same_script():
    blocks = re.findall(r"```lua\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks == [HEALTH_LUA.read_text()], (
        "docs/operations.md must show deploy/argocd/health.lua verbatim in one ```lua block")


# --- the mapping -------------------------------------------------------------------------


def test_no_status_yet_is_progressing():
    assert health(session())["status"] == "Progressing"
    assert health(session({}))["status"] == "Progressing"
    assert health(session({"conditions": []}))["status"] == "Progressing"


@pytest.mark.parametrize(("phase", "expected"), [
    ("Pending", "Progressing"),
    ("Connecting", "Progressing"),
    ("Recording", "Healthy"),
    ("Stopping", "Progressing"),
    ("Completed", "Healthy"),
    ("Failed", "Degraded"),
])
def test_phase_alone(phase: str, expected: str):
    assert health(session({"phase": phase}))["status"] == expected


def test_unknown_phase_says_so():
    result = health(session({"phase": "Hibernating"}))
    assert result == {"status": "Unknown",
                      "message": "Unrecognised phase Hibernating: update the health check"}


def test_message_comes_from_the_ready_condition():
    result = health(session({"phase": "Pending", "conditions": [
        condition("Ready", "False", "SecretNotFound", 'Secret "rdp-login" not found')]}))
    assert result == {"status": "Progressing", "message": 'Secret "rdp-login" not found'}


def test_degraded_condition_true_degrades_a_live_session():
    for phase in ("Connecting", "Recording", "Stopping", "Pending"):
        result = health(session({"phase": phase, "conditions": [
            condition("Ready", "True", "Recording", "recorder is capturing the session"),
            condition("Degraded", "True", "RecorderDegraded", "storage unreachable, retrying")]}))
        assert result == {"status": "Degraded", "message": "storage unreachable, retrying"}, phase


def test_degraded_condition_false_is_ignored():
    result = health(session({"phase": "Recording", "conditions": [
        condition("Degraded", "False", "Healthy", "the recorder reports no problem"),
        condition("Ready", "True", "Recording", "recorder is capturing the session")]}))
    assert result == {"status": "Healthy", "message": "recorder is capturing the session"}


def test_completed_is_healthy_even_after_a_degraded_spell():
    result = health(session({"phase": "Completed", "conditions": [
        condition("Degraded", "True", "RecorderDegraded", "storage was slow"),
        condition("Ready", "False", "Completed", "recording completed (StoppedBySpec)")]}))
    assert result == {"status": "Healthy", "message": "recording completed (StoppedBySpec)"}


# --- on statuses the operator's own logic produces ---------------------------------------


def test_operator_statuses_through_the_lifecycle():
    running = PodView("s-recorder-0", "Running")
    cases = [
        (Observation("Recording", False, None, None), "Progressing", "recorder pod not created"),
        (Observation("Recording", False, None, PodView("s-recorder-0", "Pending", reason=
                     "CreateContainerConfigError", message='secret "x" not found')),
         "Progressing", 'secret "x" not found'),
        (Observation("Recording", False, None, running), "Progressing", "connecting"),
        (Observation("Recording", False, None, running, recorder_capturing=True),
         "Healthy", "capturing"),
        (Observation("Stopped", False, None, running, recorder_capturing=True),
         "Progressing", "flush"),
        (Observation("Stopped", False, None, PodView("s-recorder-0", "Succeeded", exit_code=0)),
         "Healthy", "completed"),
        (Observation("Recording", False, None, PodView("s-recorder-0", "Failed", exit_code=3)),
         "Degraded", "exit code 3"),
    ]
    for obs, expected, words in cases:
        result = health(session(status_from_operator(obs)))
        assert result["status"] == expected, (obs, result)
        assert words in result["message"], (obs, result)


def test_operator_degraded_condition_degrades_recording():
    obs = Observation("Recording", False, None, PodView("s-recorder-0", "Running"),
                      recorder_capturing=True)
    degraded = degraded_update({"message": "upload failing: connection refused"}, [])
    assert degraded is not None
    result = health(session(status_from_operator(obs, degraded)))
    assert result == {"status": "Degraded", "message": "upload failing: connection refused"}
    recovered = degraded_update({}, [{"type": "Degraded", "status": "True"}])
    assert recovered is not None
    assert health(session(status_from_operator(obs, recovered)))["status"] == "Healthy"


def test_a_rejected_pod_is_degraded_not_progressing():
    # Requests above limits, a CPU above the operator's limit, a quota: no retry fixes it.
    obs = Observation("Recording", False, None, None)
    for reason, text in (("PodRejected", "the apiserver refused recorder pod s-recorder-0: "
                          "Invalid value: \"2\": must be less than or equal to cpu limit"),
                         ("SpoolTooSmall", "the largest chunk does not fit the spool")):
        result = health(session(status_from_operator(obs, config_degraded(reason, text))))
        assert result == {"status": "Degraded", "message": text}, reason


def test_a_lost_pod_is_progressing_towards_its_replacement():
    obs = Observation("Recording", False, Phase.RECORDING,
                      PodView("s-recorder-0", "Succeeded", exit_code=0))
    result = health(session(status_from_operator(obs)))
    assert result["status"] == "Progressing"
    assert "ended while spec.state is Recording" in result["message"]


def main() -> int:
    SNIPPET.write_text(render_snippet(HEALTH_LUA.read_text()))
    print(f"wrote {SNIPPET.relative_to(REPO)} from {HEALTH_LUA.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
