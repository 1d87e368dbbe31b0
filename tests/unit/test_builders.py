import json

import pytest

from lucid_operator import builders
from lucid_operator.api import RecordingSessionSpec
from lucid_operator.builders import SessionRef
from lucid_operator.settings import OperatorSettings
from lucid_recorder import contract

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
    spec = RecordingSessionSpec.model_validate(SPEC)
    return builders.recorder_pod(REF, spec, OperatorSettings(recorder_image="rec:1"))


def test_credentials_only_through_secret_refs(pod):
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for name, secret, key in [
        (contract.ENV_RDP_USERNAME, "rdp-login", "username"),
        (contract.ENV_RDP_PASSWORD, "rdp-login", "password"),
        (contract.ENV_STORAGE_ACCESS_KEY, "s3", "id"),
        (contract.ENV_STORAGE_SECRET_KEY, "s3", "secretKey"),
    ]:
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    literal = {n: e["value"] for n, e in env.items() if "value" in e}
    assert set(literal) == {contract.ENV_SESSION_NAME, contract.ENV_SESSION_NAMESPACE,
                            contract.ENV_SESSION_UID, contract.ENV_SESSION_SPEC,
                            contract.ENV_METRICS_PORT}
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
