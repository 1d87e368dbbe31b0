"""The operator on the real local stack: kubectl apply → pod → Recording → stop/delete."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lucid_common import contract
from lucid_devstack.operator_proc import OperatorProcess
from tests.e2e.support import Sessions, wait_for

pytestmark = pytest.mark.stack


def test_apply_creates_locked_down_pod_and_reaches_recording(operator, sessions: Sessions):
    out = sessions.apply(sessions.manifest("rec-basic"))
    assert "recordingsession.lucid.dev/rec-basic created" in out
    status = sessions.wait_phase("rec-basic", "Recording")
    assert status["podName"] == "rec-basic-recorder-0"
    assert status["observedGeneration"] == 1
    assert status["startedAt"]
    ready = sessions.condition("rec-basic", "Ready")
    assert ready is not None and ready["status"] == "True" and ready["reason"] == "Recording"
    for kind in ("ReferencesResolved", "TargetReachable", "RecorderRunning"):
        assert sessions.condition("rec-basic", kind)["status"] == "True", kind

    pods = sessions.pods("rec-basic")
    assert [p["metadata"]["name"] for p in pods] == ["rec-basic-recorder-0"]
    pod = pods[0]
    assert pod["status"]["phase"] == "Running"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    secret_values = {sessions.stack.desktop.password, sessions.stack.minio.secret_key,
                     sessions.stack.minio.access_key}
    assert not secret_values & {e.get("value") for e in env.values()}
    assert env[contract.ENV_RDP_PASSWORD]["valueFrom"]["secretKeyRef"]["name"] == "rdp-login"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "RecordingSession" and owner["name"] == "rec-basic"

    reasons = [e["reason"] for e in sessions.events("rec-basic")]
    assert "RecorderCreated" in reasons and "Recording" in reasons


def test_stop_via_spec_completes(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-stop"))
    sessions.wait_phase("rec-stop", "Recording")
    sessions.apply(sessions.manifest("rec-stop", state="Stopped"))
    status = sessions.wait_phase("rec-stop", "Completed", timeout=60)
    assert status["stopReason"] == "StoppedBySpec"
    assert status["stoppedAt"] and status["pipeline"]["state"] == contract.PIPELINE_FINALIZED
    # The Completed Event may land a moment after the phase it reports.
    wait_for(lambda: {"Stopping", "Completed"} <= {e["reason"] for e in
                                                   sessions.events("rec-stop")},
             30, "the Stopping and Completed Events")


def test_delete_waits_for_flush_then_everything_is_gone(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-del"))
    sessions.wait_phase("rec-del", "Recording")
    assert "lucid.dev/finalizer" in sessions.get("rec-del")["metadata"]["finalizers"]
    sessions.stack.kubectl("delete", "recordingsession", "rec-del", "-n", sessions.namespace,
                           "--wait=true", "--timeout=90s")
    assert sessions.get("rec-del") is None
    core = client.CoreV1Api(sessions.api)
    rbac = client.RbacAuthorizationV1Api(sessions.api)

    def children_gone() -> bool:
        leftovers = [
            *core.list_namespaced_pod(sessions.namespace).items,
            *core.list_namespaced_service_account(
                sessions.namespace, label_selector="lucid.dev/session=rec-del").items,
            *rbac.list_namespaced_role(sessions.namespace).items,
            *rbac.list_namespaced_role_binding(sessions.namespace).items,
        ]
        return not leftovers

    wait_for(children_gone, 60, "garbage collection of the session's pod, SA, Role, RoleBinding")


def test_operator_sigkill_adopts_pod_without_duplicates(operator: OperatorProcess,
                                                        sessions: Sessions):
    sessions.apply(sessions.manifest("rec-kill"))
    sessions.wait_phase("rec-kill", "Recording")
    before = sessions.pods("rec-kill")
    operator.kill()
    operator.start()
    # Let the restarted operator resume the session before judging it.
    wait_for(lambda: any(e["reason"] == "RecorderAdopted" for e in sessions.events("rec-kill")),
             60, "the restarted operator to adopt the running pod")
    after = sessions.pods("rec-kill")
    assert [p["metadata"]["uid"] for p in after] == [p["metadata"]["uid"] for p in before]
    assert sessions.status("rec-kill")["phase"] == "Recording"


def test_recorder_identity_can_patch_only_its_own_session(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-own"))
    sessions.apply(sessions.manifest("rec-other"))
    sessions.wait_phase("rec-own", "Recording")
    sessions.wait_phase("rec-other", "Recording")
    token = sessions.stack.kubectl("create", "token", "rec-own-recorder", "-n",
                                   sessions.namespace).stdout.strip()
    as_recorder = client.ApiClient(_token_config(sessions.api.configuration, token))
    custom = client.CustomObjectsApi(as_recorder)
    patch = {"status": {"pipeline": {"chunksStored": 7}}}
    custom.patch_namespaced_custom_object_status(
        "lucid.dev", "v1alpha1", sessions.namespace, "recordingsessions", "rec-own", patch)
    assert sessions.status("rec-own")["pipeline"]["chunksStored"] == 7
    with pytest.raises(ApiException) as denied:
        custom.patch_namespaced_custom_object_status(
            "lucid.dev", "v1alpha1", sessions.namespace, "recordingsessions", "rec-other", patch)
    assert denied.value.status == 403
    assert "forbidden" in json.loads(denied.value.body)["message"].lower()
    with pytest.raises(ApiException) as no_spec:
        custom.patch_namespaced_custom_object(
            "lucid.dev", "v1alpha1", sessions.namespace, "recordingsessions", "rec-own",
            {"spec": {"state": "Stopped"}})
    assert no_spec.value.status == 403


def _token_config(admin: client.Configuration, token: str) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return configuration


def test_max_duration_stops_the_session(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-max", maxDurationSeconds=3))
    status = sessions.wait_phase("rec-max", "Completed", timeout=60)
    assert status["stopReason"] == "MaxDurationReached"


def test_failing_recorder_is_restarted_then_failed(operator, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-exit-3"))
    status = sessions.wait_phase("rec-exit-3", "Failed", timeout=90)
    assert status["retries"] == 1
    running = sessions.condition("rec-exit-3", "RecorderRunning")
    assert running["status"] == "False" and running["reason"] == "RecorderFailed"
    assert "failed 2 times (retry.maxRetries 1); last exit code 3" in running["message"]
    assert "cannot reach the target (simulated)" in running["message"]
    reasons = [e["reason"] for e in sessions.events("rec-exit-3")]
    assert "RecorderFailed" in reasons and "Failed" in reasons
    # Given up: the crash-looping pod is removed rather than left restarting.
    wait_for(lambda: sessions.pods("rec-exit-3") == [], 30, "the failed pod to be removed")


def test_operator_exposes_health_and_metrics(operator: OperatorProcess, sessions: Sessions):
    sessions.apply(sessions.manifest("rec-metrics"))
    sessions.wait_phase("rec-metrics", "Recording")

    def recording_gauge() -> float:
        for line in operator.metrics().splitlines():
            if line.startswith('lucid_operator_sessions{phase="Recording"}'):
                return float(line.split()[-1])
        return 0.0

    wait_for(lambda: recording_gauge() >= 1, 30, "the by-phase gauge to count the session")
    text = operator.metrics()
    assert 'lucid_operator_reconciles_total{handler="start",outcome="ok"}' in text
