"""The pydantic models accept good sessions, refuse bad ones readably, and default sanely."""

import copy
import datetime as dt
import typing
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from lucid_common.api import (
    API_VERSION,
    KIND,
    Condition,
    ConditionStatus,
    PipelineStatus,
    RecordingSessionSpec,
    RecordingSessionStatus,
    Retention,
    RetentionMode,
    SessionState,
    TlsMode,
    human_bytes,
)

FINGERPRINT = ":".join(["AB"] * 32)

SAMPLE_SESSION = yaml.safe_load(
    f"""
apiVersion: {API_VERSION}
kind: {KIND}
metadata:
  name: payroll-admin
  namespace: recordings
spec:
  target:
    host: desktop01.corp.example
    domain: CORP
    credentialsSecretRef:
      name: rdp-login
    tls:
      mode: Fingerprint
      fingerprintSha256: "{FINGERPRINT}"
  recording:
    maxFps: 15
    desktop: {{width: 1280, height: 800, colorDepth: 24}}
  chunking: {{maxSeconds: 30}}
  storage:
    endpoint: minio.lucid-system.svc:9000
    bucket: lucid-recordings
    keyPrefix: prod/payroll
    credentialsSecretRef:
      name: minio-credentials
    tls:
      enabled: true
      caSecretRef: {{name: minio-ca}}
  encryption:
    recipientPublicKeySecretRef:
      name: auditors-public-key
  audit: {{owner: alice@example.com, project: payroll, environment: prod}}
  maxDurationSeconds: 28800
  recorderPod:
    resources:
      requests: {{cpu: 250m, memory: 256Mi}}
      limits: {{cpu: 1, memory: 1Gi}}
    nodeSelector: {{kubernetes.io/os: linux}}
    tolerations:
    - {{key: dedicated, operator: Equal, value: recorders, effect: NoSchedule}}
    - {{operator: Exists, effect: NoExecute, tolerationSeconds: 300}}
"""
)

MINIMAL_SPEC: dict[str, Any] = {
    "target": {"host": "10.0.0.7", "credentialsSecretRef": {"name": "rdp-login"}},
    "storage": {
        "endpoint": "minio:9000",
        "bucket": "recordings",
        "credentialsSecretRef": {"name": "minio-credentials"},
    },
    "encryption": {"recipientPublicKeySecretRef": {"name": "recipient"}},
}


def sample_spec() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_SESSION["spec"])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets a dotted path in a spec (creating dicts on the way)."""

    def mutate(spec: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        del node[leaf]

    return mutate


def _toleration(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return _set("recorderPod.tolerations", [fields])


# (id, mutation of SAMPLE_SESSION's spec, text the pydantic error must contain).
# `apiserver_rejects` is False where the apiserver prunes instead of refusing:
# an unknown key is dropped silently there, while pydantic names it.
_ABOVE_LIMIT = "Kubernetes refuses a pod whose request is above its limit"
BAD_SPECS: list[tuple[str, Callable[[dict[str, Any]], None], str, bool]] = [
    ("no-target", _delete("target"), "target\n  Field required", True),
    ("no-credentials", _delete("target.credentialsSecretRef"), "Field required", True),
    ("inline-password", _set("target.password", "hunter2"), "Extra inputs", False),
    ("host-with-scheme", _set("target.host", "rdp://desktop01"), "should match pattern", True),
    ("host-with-space", _set("target.host", "desk top"), "should match pattern", True),
    ("port-zero", _set("target.port", 0), "greater than or equal to 1", True),
    ("port-too-big", _set("target.port", 70000), "less than or equal to 65535", True),
    ("secret-name-upper", _set("target.credentialsSecretRef.name", "RDP"), "pattern", True),
    ("tls-mode-unknown", _set("target.tls.mode", "Trust"), "'Verify', 'Fingerprint'", True),
    (
        "fingerprint-missing",
        _set("target.tls", {"mode": "Fingerprint"}),
        "fingerprintSha256 is required when mode is Fingerprint",
        True,
    ),
    ("fingerprint-short", _set("target.tls.fingerprintSha256", "AB" * 31), "pattern", True),
    (
        "fingerprint-with-verify",
        _set("target.tls.mode", "Verify"),
        "fingerprintSha256 is only used when mode is Fingerprint",
        True,
    ),
    (
        "ca-with-fingerprint",
        _set("target.tls.caSecretRef", {"name": "rdp-ca"}),
        "caSecretRef is only used when mode is Verify",
        True,
    ),
    (
        "insecure-without-opt-in",
        _set("target.tls", {"mode": "Insecure"}),
        "mode Insecure requires insecureSkipVerify: true as an explicit opt-in",
        True,
    ),
    (
        "skip-verify-without-insecure",
        _set("target.tls", {"mode": "Verify", "insecureSkipVerify": True}),
        "insecureSkipVerify: true is only allowed with mode Insecure",
        True,
    ),
    ("fps-negative", _set("recording.maxFps", -1), "greater than or equal to 0", True),
    ("fps-too-high", _set("recording.maxFps", 61), "less than or equal to 60", True),
    ("width-too-small", _set("recording.desktop.width", 100), "greater than or equal", True),
    ("height-too-big", _set("recording.desktop.height", 9000), "less than or equal", True),
    ("color-depth-8", _set("recording.desktop.colorDepth", 8), "16, 24 or 32", True),
    ("chunk-seconds-zero", _set("chunking.maxSeconds", 0), "greater than or equal", True),
    ("chunk-bytes-tiny", _set("chunking.maxBytes", 1024), "greater than or equal", True),
    ("codec-gzip", _set("compression.codec", "gzip"), "'zstd' or 'none'", True),
    ("level-23", _set("compression.level", 23), "less than or equal to 22", True),
    ("bucket-upper", _set("storage.bucket", "Recordings"), "pattern", True),
    ("bucket-short", _set("storage.bucket", "ab"), "at least 3 characters", True),
    ("bucket-double-dot", _set("storage.bucket", "a..b"), "pattern", True),
    ("endpoint-with-scheme", _set("storage.endpoint", "https://minio:9000"), "pattern", True),
    ("prefix-absolute", _set("storage.keyPrefix", "/prod"), "pattern", True),
    ("prefix-dotdot", _set("storage.keyPrefix", "prod/../etc"), "pattern", True),
    ("prefix-trailing-slash", _set("storage.keyPrefix", "prod/"), "pattern", True),
    (
        "storage-ca-without-tls",
        _set("storage.tls.enabled", False),
        "caSecretRef requires enabled: true",
        True,
    ),
    (
        "storage-skip-verify-without-tls",
        _set("storage.tls", {"enabled": False, "insecureSkipVerify": True}),
        "insecureSkipVerify requires enabled: true",
        True,
    ),
    (
        "storage-ca-and-skip-verify",
        _set("storage.tls.insecureSkipVerify", True),
        "caSecretRef and insecureSkipVerify: true are mutually exclusive",
        True,
    ),
    ("no-encryption", _delete("encryption"), "encryption\n  Field required", True),
    ("state-paused", _set("state", "Paused"), "'Recording' or 'Stopped'", True),
    ("duration-zero", _set("maxDurationSeconds", 0), "greater than or equal to 1", True),
    ("audit-newline", _set("audit.owner", "alice\nbob"), "pattern", True),
    ("environment-not-label", _set("audit.environment", "prod env"),
     "environment becomes the label lucid.dev/environment, so it must be a label value: at "
     "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
     True),
    ("project-not-label", _set("audit.project", "-payroll"),
     "project becomes the label lucid.dev/project, so it must be a label value: at most 63 "
     "letters, digits, '-', '_' or '.', starting and ending with a letter or digit", True),
    ("project-too-long", _set("audit.project", "p" * 64), "at most 63 characters", True),
    ("cpu-words", _set("recorderPod.resources.requests.cpu", "lots"), "not a Kubernetes", True),
    ("cpu-float", _set("recorderPod.resources.requests.cpu", 0.5), "integer or a string", True),
    ("gpu-resource", _set("recorderPod.resources.limits.gpu", "1"), "Extra inputs", False),
    ("cpu-request-above-limit", _set("recorderPod.resources.requests.cpu", "1500m"),
     "requests.cpu must not exceed limits.cpu: " + _ABOVE_LIMIT, True),
    ("memory-request-above-limit", _set("recorderPod.resources.requests.memory", "4Gi"),
     "requests.memory must not exceed limits.memory: " + _ABOVE_LIMIT, True),
    ("scratch-request-above-limit",
     _set("recorderPod.resources", {"requests": {"ephemeral-storage": "2G"},
                                    "limits": {"ephemeral-storage": "1Gi"}}),
     "requests.ephemeral-storage must not exceed limits.ephemeral-storage: " + _ABOVE_LIMIT, True),
    (
        "toleration-exists-with-value",
        _toleration(key="dedicated", operator="Exists", value="x"),
        "value must be empty when operator is Exists",
        True,
    ),
    (
        "toleration-equal-without-key",
        _toleration(operator="Equal", value="x"),
        "operator must be Exists when key is empty",
        True,
    ),
    (
        "toleration-seconds-without-noexecute",
        _toleration(key="k", value="v", effect="NoSchedule", tolerationSeconds=5),
        "tolerationSeconds is only allowed with effect NoExecute",
        True,
    ),
    ("toleration-bad-effect", _toleration(key="k", effect="Never"), "NoSchedule", True),
    (
        "toleration-key-prefix-too-long",
        _toleration(key="a" * 254 + "/b", operator="Exists"),
        "the prefix of key (before the slash) must be at most 253 characters",
        True,
    ),
    (
        "node-selector-bad-key",
        _set("recorderPod.nodeSelector", {"bad key!": "x"}),
        "every nodeSelector key must be a label key: an optional DNS subdomain prefix of at "
        "most 253 characters and '/', then at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit",
        True,
    ),
    ("port-as-string", _set("target.port", "3389"), "must be an integer, not str", True),
    ("bool-as-string", _set("storage.createBucket", "false"), "valid boolean", True),
    ("retries-11", _set("retry.maxRetries", 11), "less than or equal to 10", True),
    ("retention-mode-unknown", _set("retention", {"mode": "Legal", "duration": "30d"}),
     "'Governance' or 'Compliance'", True),
    ("retention-no-unit", _set("retention", {"mode": "Compliance", "duration": "30"}),
     "pattern", True),
    ("retention-zero", _set("retention", {"mode": "Compliance", "duration": "0d"}),
     "pattern", True),
    ("retention-minutes", _set("retention", {"mode": "Governance", "duration": "90m"}),
     "pattern", True),
    ("retention-no-duration", _set("retention", {"mode": "Governance"}), "Field required", True),
    (
        "backoff-above-max",
        _set("retry", {"backoffSeconds": 600, "maxBackoffSeconds": 60}),
        "backoffSeconds must not exceed maxBackoffSeconds",
        True,
    ),
]


def test_sample_session_validates_and_round_trips() -> None:
    spec = RecordingSessionSpec.model_validate(SAMPLE_SESSION["spec"])
    assert spec.target.tls.mode is TlsMode.FINGERPRINT
    assert spec.storage.tls.ca_secret_ref is not None
    assert spec.recorder_pod.tolerations[1].toleration_seconds == 300
    # Quantities reach Python as strings whatever YAML made of them.
    assert spec.recorder_pod.resources is not None
    assert spec.recorder_pod.resources.limits is not None
    assert spec.recorder_pod.resources.limits.cpu == "1"
    again = RecordingSessionSpec.model_validate(spec.to_k8s())
    assert again == spec


def test_max_fps_sets_the_frame_interval_and_zero_holds_nothing() -> None:
    for fps, interval in ((1, 10**9), (30, 33_333_333), (60, 16_666_666), (0, None)):
        spec = RecordingSessionSpec.model_validate(
            {**MINIMAL_SPEC, "recording": {"maxFps": fps}})
        assert spec.recording.frame_interval_ns == interval


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = RecordingSessionSpec.model_validate(MINIMAL_SPEC)
    assert spec.target.port == 3389
    assert spec.target.tls.mode is TlsMode.VERIFY
    assert spec.target.tls.insecure_skip_verify is False
    assert spec.target.credentials_secret_ref.username_key == "username"
    assert spec.target.credentials_secret_ref.password_key == "password"
    assert (spec.recording.max_fps, spec.recording.keyframe_interval_seconds) == (10, 30)
    assert spec.recording.frame_interval_ns == 100_000_000
    desktop = spec.recording.desktop
    assert (desktop.width, desktop.height, desktop.color_depth) == (1024, 768, 32)
    assert (spec.chunking.max_seconds, spec.chunking.max_bytes) == (60, 8 * 1024 * 1024)
    assert (spec.compression.codec, spec.compression.level) == ("zstd", 9)
    assert spec.storage.key_prefix == "recordings"
    assert spec.storage.create_bucket is True
    assert spec.storage.tls.enabled is True
    assert spec.storage.credentials_secret_ref.access_key_key == "accessKey"
    assert spec.storage.credentials_secret_ref.secret_key_key == "secretKey"
    assert spec.encryption.recipient_public_key_secret_ref.key == "publicKey"
    assert spec.state is SessionState.RECORDING
    assert spec.max_duration_seconds is None
    assert (spec.retry.max_retries, spec.retry.backoff_seconds) == (3, 10)


def test_fields_accept_python_names_and_dump_camel_case() -> None:
    spec = RecordingSessionSpec.model_validate(MINIMAL_SPEC)
    by_name = RecordingSessionSpec(
        target=spec.target,
        storage=spec.storage,
        encryption=spec.encryption,
        max_duration_seconds=60,
    )
    dumped = by_name.to_k8s()
    assert dumped["maxDurationSeconds"] == 60
    assert "keyframeIntervalSeconds" in dumped["recording"]
    assert "credentialsSecretRef" in dumped["target"]
    # None never reaches the apiserver: the CRD declares nothing nullable.
    assert "audit" not in dumped
    assert "fingerprintSha256" not in dumped["target"]["tls"]


@pytest.mark.parametrize(
    "host", ["desktop01", "desktop01.corp.example", "10.0.0.7", "fe80::1", "2001:db8::42"]
)
def test_target_host_forms(host: str) -> None:
    spec = copy.deepcopy(MINIMAL_SPEC)
    spec["target"]["host"] = host
    assert RecordingSessionSpec.model_validate(spec).target.host == host


@pytest.mark.parametrize("endpoint", ["minio", "minio:9000", "10.0.0.5:443", "[::1]:9000"])
def test_storage_endpoint_forms(endpoint: str) -> None:
    spec = copy.deepcopy(MINIMAL_SPEC)
    spec["storage"]["endpoint"] = endpoint
    assert RecordingSessionSpec.model_validate(spec).storage.endpoint == endpoint


@pytest.mark.parametrize("fingerprint", ["ab" * 32, "AB" * 32, FINGERPRINT.lower()])
def test_fingerprint_forms(fingerprint: str) -> None:
    spec = sample_spec()
    spec["target"]["tls"]["fingerprintSha256"] = fingerprint
    tls = RecordingSessionSpec.model_validate(spec).target.tls
    assert tls.fingerprint_digest == b"\xab" * 32


def test_insecure_mode_with_explicit_opt_in_is_accepted() -> None:
    spec = sample_spec()
    spec["target"]["tls"] = {"mode": "Insecure", "insecureSkipVerify": True}
    assert RecordingSessionSpec.model_validate(spec).target.tls.mode is TlsMode.INSECURE


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(m, e, id=name) for name, m, e, _ in BAD_SPECS],
)
def test_bad_specs_are_rejected_readably(mutate: Callable[[dict], None], expected: str) -> None:
    spec = sample_spec()
    mutate(spec)
    with pytest.raises(ValidationError) as caught:
        RecordingSessionSpec.model_validate(spec)
    assert expected in str(caught.value)


def _models_under(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            hint = stack.pop()
            if isinstance(hint, type) and issubclass(hint, BaseModel) and hint not in found:
                found |= _models_under(hint)
            stack.extend(typing.get_args(hint))
    return found


def test_every_cross_field_rule_has_a_failing_example() -> None:
    messages = {
        rule.message
        for model in _models_under(RecordingSessionSpec)
        for rule in model.cel_rules
        if not rule.is_transition
    }
    assert len(messages) >= 12
    covered = {message for message in messages for _, _, e, _ in BAD_SPECS if message in e}
    assert messages == covered, f"rules without a BAD_SPECS case: {messages - covered}"


def test_cross_field_error_points_at_the_model() -> None:
    spec = sample_spec()
    spec["target"]["tls"] = {"mode": "Fingerprint"}
    with pytest.raises(ValidationError) as caught:
        RecordingSessionSpec.model_validate(spec)
    (error,) = caught.value.errors()
    assert error["loc"] == ("target", "tls")
    assert "fingerprintSha256 is required when mode is Fingerprint" in error["msg"]


def test_quantities_normalise_to_strings() -> None:
    spec = sample_spec()
    spec["recorderPod"]["resources"] = {"requests": {"cpu": 2, "ephemeral-storage": "1Gi"}}
    resources = RecordingSessionSpec.model_validate(spec).recorder_pod.resources
    assert resources is not None and resources.requests is not None
    assert resources.requests.cpu == "2"
    assert resources.requests.ephemeral_storage == "1Gi"
    dumped = RecordingSessionSpec.model_validate(spec).to_k8s()
    assert dumped["recorderPod"]["resources"]["requests"] == {
        "cpu": "2",
        "ephemeral-storage": "1Gi",
    }


T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_status_round_trips_and_derives_stored_human() -> None:
    status = RecordingSessionStatus.model_validate(
        {
            "phase": "Recording",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Recording",
                    "lastTransitionTime": "2026-01-01T12:00:00Z",
                    "observedGeneration": 2,
                }
            ],
            "podName": "payroll-admin-recorder-0",
            "startedAt": "2026-01-01T12:00:00Z",
            "retries": 1,
            "nextRetryAt": "2026-01-01T12:05:00Z",
            "stopReason": "MaxDurationReached",
            "pipeline": {
                "state": "Capturing",
                "stages": [{"name": "capture", "items": 10, "bytesIn": 1000, "bytesOut": 900}],
                "chunksStored": 3,
                "bytesStored": 3 * 1024 * 1024,
                "location": {"bucket": "lucid-recordings", "prefix": "prod/payroll/abc"},
            },
            "kopf": {"progress": {"create": {"retries": 1}}},
        }
    )
    assert status.pipeline is not None
    assert status.pipeline.stored_human == "3.0 MiB"
    ready = status.condition("Ready")
    assert ready is not None and ready.status is ConditionStatus.TRUE
    dumped = status.to_k8s()
    assert dumped["pipeline"]["storedHuman"] == "3.0 MiB"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert dumped["kopf"] == {"progress": {"create": {"retries": 1}}}
    assert "stoppedAt" not in dumped
    assert dumped["nextRetryAt"] == "2026-01-01T12:05:00Z"
    assert (dumped["stopReason"], dumped["pipeline"]["state"]) == (
        "MaxDurationReached",
        "Capturing",
    )


def test_status_rejects_free_text_reasons() -> None:
    with pytest.raises(ValidationError, match="stopReason"):
        RecordingSessionStatus.model_validate({"stopReason": "max duration reached"})


def test_stored_human_cannot_disagree_with_bytes_stored() -> None:
    pipeline = PipelineStatus(bytes_stored=1536, stored_human="lots")
    assert pipeline.stored_human == "1.5 KiB"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (13958643712, "13.0 GiB"),
        (2**60, "1024.0 PiB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_condition_reason_must_be_camel_case() -> None:
    with pytest.raises(ValidationError, match="pattern"):
        Condition(
            type="Ready", status=ConditionStatus.TRUE, reason="not ok", last_transition_time=T0
        )


def test_condition_needs_aware_time() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Ok",
            last_transition_time=dt.datetime(2026, 1, 1),
        )


def test_duplicate_condition_types_are_rejected() -> None:
    ready = Condition(
        type="Ready", status=ConditionStatus.TRUE, reason="Ok", last_transition_time=T0
    )
    with pytest.raises(ValidationError, match="condition types must be unique"):
        RecordingSessionStatus(conditions=[ready, ready])


def test_duplicate_stage_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="stage names must be unique"):
        PipelineStatus.model_validate({"stages": [{"name": "upload"}, {"name": "upload"}]})


@pytest.mark.parametrize(("duration", "seconds"), [
    ("1h", 3600), ("720h", 720 * 3600), ("1d", 86400), ("2555d", 2555 * 86400),
])
def test_retention_duration_in_seconds(duration: str, seconds: int) -> None:
    retention = Retention.model_validate({"mode": "Compliance", "duration": duration})
    assert retention.seconds == seconds
    assert retention.mode is RetentionMode.COMPLIANCE


def test_retention_is_optional_and_round_trips() -> None:
    assert RecordingSessionSpec.model_validate(MINIMAL_SPEC).retention is None
    spec = RecordingSessionSpec.model_validate(
        {**MINIMAL_SPEC, "retention": {"mode": "Governance", "duration": "30d"}})
    assert spec.to_k8s()["retention"] == {"mode": "Governance", "duration": "30d"}
