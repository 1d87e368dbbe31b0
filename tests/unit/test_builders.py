import base64
import json

import pytest
from pydantic import ValidationError

from lucid_common import contract
from lucid_common.api import RecordingSessionSpec
from lucid_operator import builders
from lucid_operator.builders import SessionRef
from lucid_operator.settings import OperatorSettings
from lucid_operator.spool_budget import session_spool_problem, smallest_worst_chunk, spool_bound
from lucid_recorder.settings import RecorderSettings

SPEC = {
    "target": {"host": "rdp.example.com", "credentialsSecretRef": {"name": "rdp-login"},
               "tls": {"mode": "Fingerprint", "fingerprintSha256": "ab" * 32}},
    "storage": {"endpoint": "minio:9000", "bucket": "recordings",
                "credentialsSecretRef": {"name": "s3", "accessKeyKey": "id"},
                "tls": {"enabled": True, "caSecretRef": {"name": "s3-ca"}}},
    "encryption": {"recipientPublicKeySecretRef": {"name": "auditor"}},
    "recorderPod": {"resources": {"limits": {"memory": "1Gi"}},
                    "nodeSelector": {"pool": "rec"},
                    "tolerations": [{"key": "dedicated", "value": "rec",
                                     "effect": "NoSchedule"}]},
}
REF = SessionRef("team-a", "demo", "0f6b1c5e-0000-4000-8000-000000000001")


@pytest.fixture
def pod():
    """A pod given the session's storage Secret itself (scoped credentials off, for a store
    without STS); the default, scoped, is tested on its own below."""
    spec = RecordingSessionSpec.model_validate(SPEC)
    return builders.recorder_pod(REF, spec, OperatorSettings(
        recorder_image="rec:1", storage_scoped_credentials=False))


def test_scoped_credentials_are_the_default():
    assert OperatorSettings().storage_scoped_credentials is True


def test_credentials_only_through_secret_refs(pod):
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for name, secret, key in [
        (contract.ENV_RDP_USERNAME, "rdp-login", "username"),
        (contract.ENV_RDP_PASSWORD, "rdp-login", "password"),
    ]:
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    literal = {n: e["value"] for n, e in env.items() if "value" in e}
    assert set(literal) == {contract.ENV_SESSION_NAME, contract.ENV_SESSION_NAMESPACE,
                            contract.ENV_SESSION_UID, contract.ENV_SESSION_SPEC,
                            contract.ENV_METRICS_PORT, contract.ENV_SPOOL_MAX_BYTES,
                            contract.ENV_TERMINATION_GRACE_SECONDS,
                            contract.ENV_STORAGE_AUTH_WAIT_SECONDS}
    assert literal[contract.ENV_TERMINATION_GRACE_SECONDS] == \
        str(pod["spec"]["terminationGracePeriodSeconds"])
    spec = json.loads(literal[contract.ENV_SESSION_SPEC])
    assert spec["target"]["credentialsSecretRef"] == {
        "name": "rdp-login", "usernameKey": "username", "passwordKey": "password"}


def test_pod_is_locked_down_and_owned(pod):
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}}
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["serviceAccountName"] == "demo-recorder"
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["uid"] == REF.uid and owner["controller"] is True
    assert pod["metadata"]["labels"][builders.LABEL_SESSION_UID] == REF.uid


def test_volumes_project_single_keys_read_only(pod):
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["spool"]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert volumes["recipient"]["secret"]["items"] == [{"key": "publicKey", "path": "publicKey"}]
    assert volumes["storage-ca"]["secret"]["secretName"] == "s3-ca"
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["recipient"]["readOnly"] is True
    assert mounts["spool"]["mountPath"] == contract.SPOOL_DIR
    assert "rdp-ca" not in volumes  # Fingerprint mode needs no CA bundle.


def test_storage_credentials_are_a_volume_the_kubelet_keeps_current(pod):
    # Env vars are fixed at container start; a Secret volume follows a rotated Secret.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    secret = volumes["storage-credentials"]["secret"]
    assert secret["secretName"] == "s3"
    # The Secret's own key names map onto the file names the recorder reads.
    assert secret["items"] == [
        {"key": "id", "path": contract.STORAGE_ACCESS_KEY_FILE},
        {"key": "secretKey", "path": contract.STORAGE_SECRET_KEY_FILE}]
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["storage-credentials"] == {"name": "storage-credentials", "readOnly": True,
                                             "mountPath": contract.STORAGE_CREDENTIALS_DIR}
    env = json.dumps(pod["spec"]["containers"][0]["env"])
    assert '"s3"' not in env  # no secretKeyRef to the storage Secret is left


def test_delete_timeout_must_outlast_the_grace_period():
    with pytest.raises(ValidationError, match="must exceed LUCID_TERMINATION_GRACE_SECONDS"):
        OperatorSettings(termination_grace_seconds=600, delete_timeout_seconds=300)
    assert OperatorSettings(termination_grace_seconds=600,
                            delete_timeout_seconds=700).delete_timeout_seconds == 700


def test_overrides_merge_over_defaults(pod):
    spec = pod["spec"]
    resources = spec["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert resources["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert spec["nodeSelector"] == {"pool": "rec"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "rec",
                                    "effect": "NoSchedule"}]


def test_role_reaches_only_this_session():
    role = builders.role(REF)
    assert all(rule["resourceNames"] == ["demo"] for rule in role["rules"])
    verbs = {r["resources"][0]: r["verbs"] for r in role["rules"]}
    assert verbs == {"recordingsessions": ["get"], "recordingsessions/status": ["get", "patch"]}
    binding = builders.role_binding(REF)
    assert binding["subjects"][0]["name"] == builders.service_account(REF)["metadata"]["name"]


def test_long_names_stay_valid_and_distinct():
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    name_a = builders.child_name(long_a, "recorder-0")
    name_b = builders.child_name(long_b, "recorder-0")
    assert len(name_a) <= 63 and name_a.endswith("-recorder-0")
    assert name_a != name_b
    assert builders.child_name("short", "recorder") == "short-recorder"


def test_required_secret_keys_cover_every_reference():
    spec = RecordingSessionSpec.model_validate(SPEC)
    assert builders.required_secret_keys(spec) == {
        "rdp-login": {"username", "password"},
        "s3": {"id", "secretKey"},
        "auditor": {"publicKey"},
        "s3-ca": {"ca.crt"},
    }


GiB, MiB, KiB = 1024**3, 1024**2, 1024


def _env(pod: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"] if "value" in e}


@pytest.mark.parametrize(("limit", "bound"), [
    # 80 % of the volume: the fifth kept free covers what the recorder's byte count
    # does not see (block rounding, directories, the journal line after the check).
    ("2Gi", 2 * GiB - 2 * GiB // 5),
    ("256Mi", 256 * MiB - 256 * MiB // 5),
    ("1G", 10**9 - 10**9 // 5),
    ("1Mi", 1 * MiB - MiB // 5),
])
def test_recorder_spool_bound_is_derived_from_the_volume_limit(limit, bound):
    spec = RecordingSessionSpec.model_validate(SPEC)
    settings = OperatorSettings(recorder_image="rec:1", spool_size_limit=limit)
    pod = builders.recorder_pod(REF, spec, settings)
    env = _env(pod)
    assert env[contract.ENV_SPOOL_MAX_BYTES] == str(bound)
    assert pod["spec"]["volumes"][0] == {"name": "spool", "emptyDir": {"sizeLimit": limit}}


def test_the_recorder_takes_the_bound_from_the_pod_env(monkeypatch):
    spec = RecordingSessionSpec.model_validate(SPEC)
    env = _env(builders.recorder_pod(REF, spec, OperatorSettings(spool_size_limit="256Mi")))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (contract.ENV_RDP_USERNAME, contract.ENV_RDP_PASSWORD):
        monkeypatch.setenv(name, "x")
    settings = RecorderSettings()
    assert settings.spool_max_bytes == spool_bound(256 * MiB) < 256 * MiB
    assert settings.termination_grace_seconds == OperatorSettings().termination_grace_seconds
    assert settings.storage_auth_wait_seconds == OperatorSettings().storage_auth_wait_seconds


def test_spool_bound_keeps_a_floor_of_headroom():
    # Below 320 KiB a fifth would be under 64 KiB (no allowed limit is that small).
    assert spool_bound(300 * KiB) == 300 * KiB - 64 * KiB
    assert spool_bound(64 * KiB) == 0


@pytest.mark.parametrize("limit", ["256Ki", "512Ki", "600Ki", "0", "1"])
def test_a_limit_too_small_for_any_chunk_is_refused_at_start(limit):
    with pytest.raises(ValidationError) as refused:
        OperatorSettings(spool_size_limit=limit)
    message = str(refused.value)
    assert "spool_size_limit" in message and repr(limit) in message, message
    assert f"less than one chunk of the smallest session ({smallest_worst_chunk()} bytes" \
        in message, message
    assert "use at least 640Ki" in message, message


@pytest.mark.parametrize("limit", ["2GB", "2gi", "-1Gi", "", "1 Gi", "0x10"])
def test_a_limit_that_is_no_quantity_is_refused_at_start(limit):
    with pytest.raises(ValidationError, match="is not a Kubernetes quantity"):
        OperatorSettings(spool_size_limit=limit)


def test_the_least_allowed_limit_fits_the_smallest_session():
    OperatorSettings(spool_size_limit="640Ki")
    smallest = RecordingSessionSpec.model_validate({
        **SPEC, "chunking": {"maxBytes": 64 * KiB},
        "recording": {"desktop": {"width": 200, "height": 200}}})
    assert session_spool_problem(smallest, "640Ki") is None
    assert spool_bound(640 * KiB) >= smallest_worst_chunk()


def test_a_session_whose_chunks_cannot_fit_is_named():
    default = RecordingSessionSpec.model_validate(SPEC)  # 8 MiB chunks, 1024x768
    assert session_spool_problem(default, "2Gi") is None
    # The largest chunks a spec allows still fit the default limit.
    largest = RecordingSessionSpec.model_validate({
        **SPEC, "chunking": {"maxBytes": 256 * MiB},
        "recording": {"desktop": {"width": 8192, "height": 8192}}})
    assert session_spool_problem(largest, "2Gi") is None
    problem = session_spool_problem(default, "8Mi")
    assert problem is not None
    # 8 MiB of updates, three 1024x768 frames, slack, zstd's worst case, the seal.
    plaintext = 8 * MiB + 3 * 1024 * 768 * 3 + 64 * KiB
    worst = plaintext + plaintext // 256 + 1024 + 512
    assert f"can reach {worst} bytes" in problem, problem
    assert f"spool bound of {spool_bound(8 * MiB)} bytes" in problem, problem
    assert "spec.chunking.maxBytes" in problem and "LUCID_SPOOL_SIZE_LIMIT" in problem
    # Stored uncompressed, a chunk does not grow by zstd's framing.
    raw = RecordingSessionSpec.model_validate({**SPEC, "compression": {"codec": "none"}})
    assert f"can reach {plaintext + 512} bytes" in (session_spool_problem(raw, "8Mi") or "")
    # Just enough: the bound equals the worst chunk.
    assert session_spool_problem(default, str(worst * 5 // 4 + 4)) is None


def test_the_operator_refuses_to_start_with_a_too_small_limit(monkeypatch, capsys):
    from lucid_operator import main as operator_main

    monkeypatch.setenv("LUCID_SPOOL_SIZE_LIMIT", "256Ki")
    assert operator_main.main() == 2  # before any API call or kopf start
    err = capsys.readouterr().err
    assert "invalid settings" in err and "spool_size_limit" in err, err
    assert "'256Ki' leaves the recorder a spool of 196608 bytes" in err, err


def test_audit_project_and_environment_label_the_pod_but_not_the_owner():
    spec = RecordingSessionSpec.model_validate(
        {**SPEC, "audit": {"owner": "Alice Example <alice@example.com>", "project": "payroll",
                           "environment": "prod"}})
    pod = builders.recorder_pod(REF, spec, OperatorSettings())
    labels = pod["metadata"]["labels"]
    assert labels["lucid.dev/project"] == "payroll"
    assert labels["lucid.dev/environment"] == "prod"
    assert not any("alice" in value.lower() for value in labels.values())
    # The session's other children are not selected by audit.
    assert "lucid.dev/project" not in builders.role(REF)["metadata"]["labels"]


def test_a_pod_without_audit_has_no_audit_labels(pod):
    assert not {"lucid.dev/project", "lucid.dev/environment"} & set(pod["metadata"]["labels"])


def test_label_patch_sets_changes_and_removes_only_audit_labels():
    current = {"lucid.dev/project": "old", "lucid.dev/environment": "prod", "team": "a"}
    wanted = builders.audit_labels(RecordingSessionSpec.model_validate(
        {**SPEC, "audit": {"project": "new"}}))
    assert wanted == {"lucid.dev/project": "new", "lucid.dev/environment": None}
    assert builders.label_patch(current, wanted) == {
        "lucid.dev/project": "new", "lucid.dev/environment": None}
    assert builders.label_patch({"lucid.dev/project": "new"}, wanted) == {}
    cleared = builders.audit_labels(RecordingSessionSpec.model_validate(SPEC))
    assert builders.label_patch(current, cleared) == {
        "lucid.dev/project": None, "lucid.dev/environment": None}


def test_scoped_credentials_replace_the_shared_storage_secret_in_the_pod():
    spec = RecordingSessionSpec.model_validate(SPEC)
    scoped = builders.recorder_pod(REF, spec, OperatorSettings(
        recorder_image="rec:1", storage_scoped_credentials=True))
    container = scoped["spec"]["containers"][0]
    named = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
             if "valueFrom" in e} | {v["secret"]["secretName"] for v in scoped["spec"]["volumes"]
                                     if "secret" in v}
    assert "s3" not in named  # the long-lived key's Secret is never mounted
    (volume,) = [v for v in scoped["spec"]["volumes"] if v["name"] == "storage-credentials"]
    assert volume["secret"]["secretName"] == "demo-storage-session"
    assert [i["key"] for i in volume["secret"]["items"]] == [
        contract.STORAGE_ACCESS_KEY_FILE, contract.STORAGE_SECRET_KEY_FILE,
        contract.STORAGE_SESSION_TOKEN_FILE]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "storage-credentials")
    assert mount == {"name": "storage-credentials",
                     "mountPath": contract.STORAGE_CREDENTIALS_DIR, "readOnly": True}


def test_without_scoped_credentials_the_sessions_own_secret_is_mounted(pod):
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "storage-credentials"]
    assert volume["secret"]["secretName"] == SPEC["storage"]["credentialsSecretRef"]["name"]
    assert contract.STORAGE_SESSION_TOKEN_FILE not in [
        i["path"] for i in volume["secret"]["items"]]




def test_a_scoped_pod_mounts_its_own_resume_point_and_is_told_where():
    spec = RecordingSessionSpec.model_validate(SPEC)
    settings = OperatorSettings(recorder_image="rec:1", storage_scoped_credentials=True)
    name = builders.resume_configmap_name("demo-recorder-1")
    pod = builders.recorder_pod(REF, spec, settings, name)
    container = pod["spec"]["containers"][0]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "resume"]
    assert volume["configMap"]["name"] == "demo-recorder-1-resume"
    assert {"name": "resume", "mountPath": contract.RESUME_DIR, "readOnly": True} in \
        container["volumeMounts"]
    assert {"name": contract.ENV_RESUME_DIR, "value": contract.RESUME_DIR} in container["env"]
    unscoped = builders.recorder_pod(REF, spec, OperatorSettings(recorder_image="rec:1"))
    assert "resume" not in {v["name"] for v in unscoped["spec"]["volumes"]}

    configmap = builders.resume_configmap(REF, "demo-recorder-1", b"\x1f\x8bpoint")
    assert configmap["metadata"]["name"] == name and configmap["immutable"] is True
    assert configmap["metadata"]["ownerReferences"] == [REF.owner_reference()]
    assert base64.b64decode(configmap["binaryData"][contract.RESUME_FILE]) == b"\x1f\x8bpoint"
