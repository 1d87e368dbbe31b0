"""RecordingSession.spec: what to record, how, and where to put it.

Field descriptions are what `kubectl explain recordingsession.spec...` prints,
so they are written for the person filling in the manifest.
"""

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, model_validator

from lucid_common.api.base import ApiModel, CelRule
from lucid_common.api.types import (
    LABEL_VALUE_RULE_TEXT,
    NONEMPTY_LABEL_VALUE_PATTERN,
    QUALIFIED_NAME_MAX_LENGTH,
    QUALIFIED_NAME_PATTERN,
    CelInt,
    Endpoint,
    FingerprintSha256,
    Host,
    JsonBool,
    JsonInt,
    LabelValue,
    Quantity,
    SecretKey,
    SecretName,
    SingleLine,
    is_qualified_name,
    json_int,
    qualified_name_cel,
    quantity_value,
)

MiB = 1024 * 1024

# Secrets are always read from the session's own namespace: a namespace field
# would let anyone who can create a session read any Secret the operator can.
_SECRET_NAME = "Name of a Secret in the RecordingSession's namespace."


class CaSecretRef(ApiModel):
    """A PEM bundle of certificate authorities kept in a Secret."""

    name: SecretName = Field(description=_SECRET_NAME)
    key: SecretKey = Field("ca.crt", description="Key in the Secret that holds the PEM bundle.")


class TargetCredentialsRef(ApiModel):
    """The Secret that holds the RDP login. Credentials are never written inline."""

    name: SecretName = Field(description=_SECRET_NAME)
    username_key: SecretKey = Field(
        "username", description="Key in the Secret that holds the user name."
    )
    password_key: SecretKey = Field(
        "password", description="Key in the Secret that holds the password."
    )


class TlsMode(StrEnum):
    """How the recorder decides to trust the RDP server's certificate."""

    VERIFY = "Verify"
    FINGERPRINT = "Fingerprint"
    INSECURE = "Insecure"


class TargetTls(ApiModel):
    """Trust settings for the TLS layer of the RDP connection."""

    cel_rules = (
        CelRule(
            rule="self.mode != 'Fingerprint' || has(self.fingerprintSha256)",
            message="fingerprintSha256 is required when mode is Fingerprint",
            check=lambda m: m.mode != TlsMode.FINGERPRINT or m.fingerprint_sha256 is not None,
            field_path=".fingerprintSha256",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.fingerprintSha256) || self.mode == 'Fingerprint'",
            message="fingerprintSha256 is only used when mode is Fingerprint",
            check=lambda m: m.fingerprint_sha256 is None or m.mode == TlsMode.FINGERPRINT,
            field_path=".fingerprintSha256",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.caSecretRef) || self.mode == 'Verify'",
            message="caSecretRef is only used when mode is Verify",
            check=lambda m: m.ca_secret_ref is None or m.mode == TlsMode.VERIFY,
            field_path=".caSecretRef",
            reason="FieldValueForbidden",
        ),
        # Insecure is spelled out twice on purpose: a mode typo or a copied
        # manifest should never switch verification off by itself.
        CelRule(
            rule="self.mode != 'Insecure'"
            " || (has(self.insecureSkipVerify) && self.insecureSkipVerify)",
            message="mode Insecure requires insecureSkipVerify: true as an explicit opt-in",
            check=lambda m: m.mode != TlsMode.INSECURE or m.insecure_skip_verify,
            field_path=".insecureSkipVerify",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.insecureSkipVerify) || !self.insecureSkipVerify"
            " || self.mode == 'Insecure'",
            message="insecureSkipVerify: true is only allowed with mode Insecure",
            check=lambda m: not m.insecure_skip_verify or m.mode == TlsMode.INSECURE,
            field_path=".insecureSkipVerify",
            reason="FieldValueForbidden",
        ),
    )

    mode: TlsMode = Field(
        TlsMode.VERIFY,
        json_schema_extra={"maxLength": 16},
        description=(
            "Verify: the certificate must chain to a trusted CA (caSecretRef, or the "
            "recorder image's system roots) and match target.host. "
            "Fingerprint: the certificate's SHA-256 fingerprint must equal fingerprintSha256 "
            "(suits self-signed RDP hosts). "
            "Insecure: any certificate is accepted; needs insecureSkipVerify: true."
        ),
    )
    ca_secret_ref: CaSecretRef | None = Field(
        None, description="CA bundle to verify against in Verify mode, instead of system roots."
    )
    fingerprint_sha256: FingerprintSha256 | None = Field(
        None,
        description=(
            "SHA-256 fingerprint of the server certificate for Fingerprint mode: 64 hex "
            "digits, optionally as colon-separated pairs; case does not matter."
        ),
    )
    insecure_skip_verify: JsonBool = Field(
        False,
        description=(
            "Acknowledges that the server is not authenticated at all. Must be true with "
            "mode Insecure and is rejected with any other mode."
        ),
    )

    @property
    def fingerprint_digest(self) -> bytes | None:
        """fingerprintSha256 as the 32 raw bytes to compare with the certificate's digest."""
        if self.fingerprint_sha256 is None:
            return None
        return bytes.fromhex(self.fingerprint_sha256.replace(":", ""))


class Target(ApiModel):
    """The RDP server to record and how to log in to it. Immutable once created."""

    cel_rules = (
        CelRule(
            rule="self == oldSelf",
            message="target is immutable: create a new RecordingSession to record another host",
            check=None,
        ),
    )

    host: Host = Field(description="Host name, IPv4 or IPv6 address of the RDP server.")
    port: JsonInt = Field(3389, ge=1, le=65535, description="TCP port of the RDP server.")
    domain: SingleLine | None = Field(
        None,
        min_length=1,
        description="Windows domain of the account, if it is not a local account.",
    )
    credentials_secret_ref: TargetCredentialsRef = Field(
        description="Secret with the user name and password used to log in."
    )
    tls: TargetTls = Field(
        default_factory=TargetTls,
        description="How the server's TLS certificate is checked. Defaults to mode Verify.",
    )


class Desktop(ApiModel):
    """Desktop geometry requested from the RDP server."""

    width: JsonInt = Field(1024, ge=200, le=8192, description="Desktop width in pixels.")
    height: JsonInt = Field(768, ge=200, le=8192, description="Desktop height in pixels.")
    color_depth: Literal[16, 24, 32] = Field(32, description="Bits per pixel: 16, 24 or 32.")


class Recording(ApiModel):
    """What is captured from the screen."""

    max_fps: JsonInt = Field(
        10,
        ge=0,
        le=60,
        description=(
            "Highest rate, in frames per second, at which screen updates are recorded. "
            "Updates that arrive within one frame (1/maxFps s) are stored as one frame: "
            "the changed areas with the screen's exact pixels at the frame's end, so every "
            "stored frame is pixel-exact and a state shown for less than one frame is not "
            "stored. 0 stores every update the server sends, as fast as it sends them."
        ),
    )
    desktop: Desktop = Field(
        default_factory=Desktop, description="Desktop size and colour depth to request."
    )
    keyframe_interval_seconds: JsonInt = Field(
        30,
        ge=1,
        le=3600,
        description=(
            "Seconds between full-screen keyframes; playback can start at any keyframe, "
            "so a shorter interval means faster seeking and larger recordings."
        ),
    )
    screen_timeout_seconds: JsonInt = Field(
        60,
        ge=0,
        le=3600,
        description=(
            "Seconds after connecting within which the recorder must see the remote "
            "session's screen, not only the server's own login or error screen (what xrdp "
            "shows for a wrong password): NLA, a logon the server confirms, or a second "
            "full-screen paint after the server's own first one. Past it the session is "
            "Degraded (reason NoScreenUpdates) and not Ready. An idle desktop is not "
            "affected: it sent its first full frame at logon. 0 turns the check off."
        ),
    )

    @property
    def frame_interval_ns(self) -> int | None:
        """How long updates are held to make one frame; None: none are held (maxFps 0)."""
        return 10**9 // self.max_fps if self.max_fps else None


class Chunking(ApiModel):
    """When the recorder closes a chunk and uploads it. Whichever limit is hit first wins."""

    max_seconds: JsonInt = Field(
        60,
        ge=1,
        le=3600,
        description="Longest stretch of recording, in seconds, kept in one chunk.",
    )
    max_bytes: JsonInt = Field(
        8 * MiB,
        ge=64 * 1024,
        # The recorder holds a whole chunk in memory while it encrypts it.
        le=256 * MiB,
        description=(
            "Bytes of screen updates, before compression, after which a chunk closes "
            "(64 KiB to 256 MiB). Each chunk also opens with a full-screen keyframe "
            "(width x height x 3 bytes), which this limit does not count."
        ),
    )


class Codec(StrEnum):
    """Compression codec for chunk payloads."""

    ZSTD = "zstd"
    NONE = "none"


class Compression(ApiModel):
    """How chunk payloads are compressed before they are encrypted."""

    codec: Codec = Field(
        Codec.ZSTD,
        json_schema_extra={"maxLength": 8},
        description="zstd, or none to store uncompressed (for debugging).",
    )
    level: JsonInt = Field(
        # Measured in bench/chunking.py: level 9 stores about 40 % less than 3 for under
        # half a CPU second per recorded minute; above 12 the CPU and memory climb steeply.
        9,
        ge=1,
        le=22,
        description="zstd compression level, 1 (fastest) to 22 (smallest); ignored for none.",
    )


class StorageCredentialsRef(ApiModel):
    """The Secret with the S3 access key pair. Credentials are never written inline."""

    name: SecretName = Field(description=_SECRET_NAME)
    access_key_key: SecretKey = Field(
        "accessKey", description="Key in the Secret that holds the access key ID."
    )
    secret_key_key: SecretKey = Field(
        "secretKey", description="Key in the Secret that holds the secret access key."
    )


class StorageTls(ApiModel):
    """TLS settings for the connection to the object store."""

    cel_rules = (
        CelRule(
            rule="!has(self.caSecretRef) || self.enabled",
            message="caSecretRef requires enabled: true",
            check=lambda m: m.ca_secret_ref is None or m.enabled,
            field_path=".caSecretRef",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!self.insecureSkipVerify || self.enabled",
            message="insecureSkipVerify requires enabled: true",
            check=lambda m: not m.insecure_skip_verify or m.enabled,
            field_path=".insecureSkipVerify",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!(has(self.caSecretRef) && self.insecureSkipVerify)",
            message="caSecretRef and insecureSkipVerify: true are mutually exclusive",
            check=lambda m: not (m.ca_secret_ref is not None and m.insecure_skip_verify),
            field_path=".insecureSkipVerify",
            reason="FieldValueForbidden",
        ),
    )

    enabled: JsonBool = Field(True, description="Use HTTPS to reach the object store.")
    ca_secret_ref: CaSecretRef | None = Field(
        None, description="CA bundle to verify the object store against, instead of system roots."
    )
    insecure_skip_verify: JsonBool = Field(
        False, description="Accept any certificate from the object store. For test setups only."
    )


class Storage(ApiModel):
    """The S3-compatible bucket (MinIO) that receives the chunks. Immutable once created."""

    cel_rules = (
        CelRule(
            rule="self == oldSelf",
            message="storage is immutable: all chunks of a session go to one place",
            check=None,
        ),
    )

    endpoint: Endpoint = Field(
        description=(
            "host[:port] of the S3 API, without a scheme (tls.enabled picks http or https); "
            "IPv6 addresses go in brackets."
        )
    )
    bucket: str = Field(
        min_length=3,
        max_length=63,
        # DNS-compatible bucket names: labels of [a-z0-9-] joined by single dots.
        pattern=r"^[a-z0-9]+((-+|\.)[a-z0-9]+)*$",
        description="Bucket name: 3-63 lower-case letters, digits, hyphens and single dots.",
    )
    key_prefix: str = Field(
        "recordings",
        max_length=256,
        # Segments may not start with a dot, which rules out "." and ".." too.
        pattern=r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*)?$",
        description=(
            "Object key prefix, as slash-separated segments without leading or trailing "
            "slash; chunks are stored below it. Empty means the bucket root."
        ),
    )
    credentials_secret_ref: StorageCredentialsRef = Field(
        description="Secret with the access key pair for the object store."
    )
    tls: StorageTls = Field(
        default_factory=StorageTls,
        description="HTTPS settings. Defaults to HTTPS with system roots.",
    )
    create_bucket: JsonBool = Field(True, description="Create the bucket if it does not exist yet.")


class RetentionMode(StrEnum):
    """S3 Object Lock retention mode of every object a session writes."""

    GOVERNANCE = "Governance"
    COMPLIANCE = "Compliance"


RETENTION_UNITS: Final = {"h": 3600, "d": 86400}
RETENTION_DURATION_PATTERN: Final = r"^[1-9][0-9]{0,5}(h|d)$"


class Retention(ApiModel):
    """How long the store must keep every chunk, manifest and seal unchanged."""

    cel_rules = (
        CelRule(
            rule="self == oldSelf",
            message="retention is immutable: it cannot be shortened or changed once recording",
            check=None,
        ),
    )

    mode: RetentionMode = Field(
        json_schema_extra={"maxLength": 16},
        description=(
            "Compliance: no one, not even the store's root user, can delete or overwrite an "
            "object version or shorten its retention before it expires. Governance: the same, "
            "except for principals granted s3:BypassGovernanceRetention who send the bypass "
            "header explicitly."
        ),
    )
    duration: str = Field(
        max_length=8,
        pattern=RETENTION_DURATION_PATTERN,
        description=(
            "How long each object is retained from the moment it is written: a whole number "
            "of hours or days, e.g. 720h or 2555d. The bucket must have object lock enabled "
            "(createBucket makes it so)."
        ),
    )

    @property
    def seconds(self) -> int:
        return int(self.duration[:-1]) * RETENTION_UNITS[self.duration[-1]]

    @property
    def s3_mode(self) -> str:
        """The mode as S3 spells it in x-amz-object-lock-mode (GOVERNANCE, COMPLIANCE)."""
        return self.mode.value.upper()

    def retain_until(self, written_at: dt.datetime) -> dt.datetime:
        """Retain-until of an object written at `written_at`, in UTC.

        Whole seconds, rounded up: the S3 date has no more precision than a second
        everywhere, and rounding down would shorten the retention the spec asked for.
        """
        return written_at.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(
            seconds=self.seconds + (1 if written_at.microsecond else 0))


class PublicKeySecretRef(ApiModel):
    """The Secret with the public key that chunks are encrypted to."""

    name: SecretName = Field(description=_SECRET_NAME)
    key: SecretKey = Field("publicKey", description="Key in the Secret that holds the public key.")


class Encryption(ApiModel):
    """Chunk encryption. Only the holder of the matching private key can replay a recording."""

    cel_rules = (
        CelRule(
            rule="self == oldSelf",
            message="encryption is immutable: all chunks of a session go to one recipient",
            check=None,
        ),
    )

    recipient_public_key_secret_ref: PublicKeySecretRef = Field(
        description=(
            "Secret with the recipient's public key; the private key never enters the cluster."
        )
    )


# The operator mirrors these audit fields into labels of the session and its recorder
# pods, so `kubectl get rsess -l lucid.dev/project=payroll` finds a project's sessions.
# The owner is free text (a person, an e-mail address), not a label value: not mirrored.
AUDIT_LABELS: Final = {"project": "lucid.dev/project", "environment": "lucid.dev/environment"}


def _audit_label_rule(field: str) -> CelRule:
    # A CEL rule rather than a schema pattern: the apiserver prints its message, where a
    # pattern would only print the regular expression.
    return CelRule(
        rule=f"!has(self.{field}) || self.{field}.matches('{NONEMPTY_LABEL_VALUE_PATTERN}')",
        message=f"{field} becomes the label {AUDIT_LABELS[field]}, so it must be a label "
                f"value: {LABEL_VALUE_RULE_TEXT}",
        check=lambda m: getattr(m, field) is None
        or re.fullmatch(NONEMPTY_LABEL_VALUE_PATTERN, getattr(m, field)) is not None,
        field_path=f".{field}",
        reason="FieldValueInvalid",
    )


class Audit(ApiModel):
    """Who the recording is for. Stored with the recording; not used to make decisions."""

    cel_rules = (_audit_label_rule("project"), _audit_label_rule("environment"))

    owner: SingleLine | None = Field(
        None, min_length=1, description="Person or team accountable for the session."
    )
    project: str | None = Field(
        None, min_length=1, max_length=63,
        description="Project the session belongs to. The operator copies it into the label "
                    f"{AUDIT_LABELS['project']} of the session and its recorder pods, so it "
                    f"must be a label value: {LABEL_VALUE_RULE_TEXT}.",
    )
    environment: str | None = Field(
        None, min_length=1, max_length=63,
        description="Environment of the target, e.g. prod. The operator copies it into the "
                    f"label {AUDIT_LABELS['environment']} of the session and its recorder "
                    f"pods, so it must be a label value: {LABEL_VALUE_RULE_TEXT}.",
    )


class SessionState(StrEnum):
    """Desired state of the recording."""

    RECORDING = "Recording"
    STOPPED = "Stopped"


class ResourceList(ApiModel):
    """Amounts of compute resources, as Kubernetes quantities."""

    cpu: Quantity | None = Field(None, description="CPU, e.g. 500m or 2.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 256Mi.")
    # Kubernetes spells this key with a hyphen, so the alias is explicit.
    ephemeral_storage: Quantity | None = Field(
        None, alias="ephemeral-storage", description="Scratch disk space, e.g. 1Gi."
    )


def _request_within_limit(resource: str, attribute: str) -> CelRule:
    # CEL names a property with a hyphen "__dash__".
    cel = resource.replace("-", "__dash__")

    def check(m: "Resources") -> bool:
        request = getattr(m.requests, attribute, None) if m.requests else None
        limit = getattr(m.limits, attribute, None) if m.limits else None
        return request is None or limit is None or \
            quantity_value(request) <= quantity_value(limit)

    return CelRule(
        rule=f"!has(self.requests) || !has(self.limits) || !has(self.requests.{cel})"
             f" || !has(self.limits.{cel})"
             f" || !quantity(string(self.requests.{cel}))"
             f".isGreaterThan(quantity(string(self.limits.{cel})))",
        message=f"requests.{resource} must not exceed limits.{resource}: Kubernetes refuses "
                "a pod whose request is above its limit",
        check=check,
        field_path=".requests",
        reason="FieldValueInvalid",
    )


class Resources(ApiModel):
    """Compute resources of the recorder container."""

    cel_rules = (
        _request_within_limit("cpu", "cpu"),
        _request_within_limit("memory", "memory"),
        _request_within_limit("ephemeral-storage", "ephemeral_storage"),
    )

    @model_validator(mode="before")
    @classmethod
    def no_float_quantity_in_a_comparison(cls, data: Any) -> Any:
        # The apiserver's CEL cannot read an int-or-string holding 2.0 ("expected
        # XIntOrString value to be either a string or integer"), so the rules above refuse
        # it when a request and its limit are both set; say so here too, readably.
        if isinstance(data, dict) and isinstance(data.get("requests"), dict) and \
                isinstance(data.get("limits"), dict):
            for resource in ("cpu", "memory", "ephemeral-storage"):
                pair = (data["requests"].get(resource), data["limits"].get(resource))
                # A fractional float is refused by the quantity type itself, with its own
                # message; only an integral one (2.0) gets this far.
                if None not in pair and any(isinstance(v, float) and v.is_integer()
                                            for v in pair):
                    raise ValueError(f"requests.{resource} and limits.{resource} must be "
                                     "integers or strings (2 or '2', not 2.0) to be compared")
        return data

    requests: ResourceList | None = Field(
        None, description="Resources reserved for the recorder container."
    )
    limits: ResourceList | None = Field(
        None, description="Most resources the recorder container may use."
    )


class TolerationOperator(StrEnum):
    """How a toleration's key and value are matched against a taint."""

    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    """Taint effect to match."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A core/v1 Toleration for the recorder pod."""

    # Kubernetes' own Toleration validation, checked here so a bad toleration
    # fails when the session is created and not when its pod is.
    cel_rules = (
        CelRule(
            rule="has(self.key) || self.operator == 'Exists'",
            message="operator must be Exists when key is empty",
            check=lambda m: m.key is not None or m.operator == TolerationOperator.EXISTS,
            field_path=".operator",
            reason="FieldValueInvalid",
        ),
        CelRule(
            rule="self.operator != 'Exists' || !has(self.value) || self.value == ''",
            message="value must be empty when operator is Exists",
            check=lambda m: m.operator != TolerationOperator.EXISTS or not m.value,
            field_path=".value",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.key) || !self.key.contains('/') || self.key.indexOf('/') <= 253",
            message="the prefix of key (before the slash) must be at most 253 characters",
            check=lambda m: m.key is None or is_qualified_name(m.key),
            field_path=".key",
            reason="FieldValueInvalid",
        ),
        CelRule(
            rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            message="tolerationSeconds is only allowed with effect NoExecute",
            check=lambda m: m.toleration_seconds is None or m.effect == TaintEffect.NO_EXECUTE,
            field_path=".tolerationSeconds",
            reason="FieldValueForbidden",
        ),
    )

    key: str | None = Field(
        None,
        min_length=1,
        max_length=QUALIFIED_NAME_MAX_LENGTH,
        # A qualified name; the length of its prefix is one of the rules above.
        pattern=QUALIFIED_NAME_PATTERN,
        description="Taint key to match; empty with operator Exists matches every taint.",
    )
    operator: TolerationOperator = Field(
        TolerationOperator.EQUAL,
        json_schema_extra={"maxLength": 8},
        description="Exists matches any value; Equal matches value exactly.",
    )
    value: LabelValue | None = Field(None, description="Taint value to match with operator Equal.")
    effect: TaintEffect | None = Field(
        None,
        json_schema_extra={"maxLength": 16},
        description="Taint effect to match; empty matches every effect.",
    )
    toleration_seconds: json_int(ge=0) | None = Field(  # type: ignore[valid-type]
        None,
        description="With effect NoExecute: how long the pod stays bound after the taint appears.",
    )


def _without_null_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value


class RecorderPod(ApiModel):
    """Scheduling and resources of the recorder pod."""

    # A JSON schema cannot constrain map keys, and a key the pod refuses would
    # only fail when the operator creates the pod.
    cel_rules = (
        CelRule(
            rule=f"!has(self.nodeSelector) || self.nodeSelector.all(k, {qualified_name_cel('k')})",
            message="every nodeSelector key must be a label key: an optional DNS subdomain "
            "prefix of at most 253 characters and '/', then at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit",
            check=lambda m: all(is_qualified_name(key) for key in m.node_selector),
            field_path=".nodeSelector",
            reason="FieldValueInvalid",
        ),
    )

    resources: Resources | None = Field(
        None, description="Requests and limits of the recorder container."
    )
    # A null value is pruned by the apiserver, so it is dropped here too.
    node_selector: Annotated[dict[str, LabelValue], BeforeValidator(_without_null_values)] = Field(
        default_factory=dict,
        max_length=32,
        description="Labels a node must have to run the recorder pod.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
        description="Taints the recorder pod tolerates.",
    )


class RetryPolicy(ApiModel):
    """How often a failed recorder pod is replaced before the session is Failed."""

    cel_rules = (
        CelRule(
            rule="self.backoffSeconds <= self.maxBackoffSeconds",
            message="backoffSeconds must not exceed maxBackoffSeconds",
            check=lambda m: m.backoff_seconds <= m.max_backoff_seconds,
            field_path=".backoffSeconds",
            reason="FieldValueInvalid",
        ),
    )

    max_retries: JsonInt = Field(
        3, ge=0, le=10,
        description="Restarts or replacement pods after the recorder fails or its pod is lost "
        "(deleted, evicted); one more makes the session Failed.",
    )
    backoff_seconds: CelInt = Field(
        10,
        ge=1,
        le=3600,
        description="Wait before the first replacement; doubled for each further one.",
    )
    max_backoff_seconds: CelInt = Field(
        300, ge=1, le=3600, description="Upper bound of the doubled wait."
    )


class RecordingSessionSpec(ApiModel):
    """Desired state of a RecordingSession: one recorder pod recording one RDP session."""

    cel_rules = (
        CelRule(
            rule="has(self.retention) == has(oldSelf.retention)",
            message="retention cannot be added to or removed from a session once created",
            check=None,
            field_path=".retention",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="oldSelf.state != 'Stopped' || self.state == 'Stopped'",
            message="a Stopped session cannot be restarted: create a new RecordingSession",
            check=None,
            field_path=".state",
            reason="FieldValueInvalid",
        ),
    )

    target: Target = Field(description="The RDP server to record. Immutable.")
    recording: Recording = Field(
        default_factory=Recording, description="Frame rate and desktop settings."
    )
    chunking: Chunking = Field(
        default_factory=Chunking, description="When a chunk is closed and uploaded."
    )
    compression: Compression = Field(
        default_factory=Compression, description="Compression of chunk payloads."
    )
    storage: Storage = Field(description="Where chunks are stored. Immutable.")
    encryption: Encryption = Field(description="Who can decrypt the chunks. Immutable.")
    audit: Audit | None = Field(
        None, description="Accountability information stored with the recording."
    )
    retention: Retention | None = Field(
        None,
        description=(
            "S3 Object Lock retention on every object the session writes (chunks, manifests, "
            "seals). Unset: no retention. Immutable."
        ),
    )
    state: SessionState = Field(
        SessionState.RECORDING,
        json_schema_extra={"maxLength": 16},
        description=(
            "Recording keeps the recorder running; Stopped ends the recording cleanly "
            "(the last chunk is uploaded). A Stopped session cannot be set back to Recording."
        ),
    )
    max_duration_seconds: json_int(ge=1, le=7 * 24 * 3600) | None = Field(  # type: ignore[valid-type]
        None,
        description="Stop the recording after this many seconds; unset means no limit.",
    )
    recorder_pod: RecorderPod = Field(
        default_factory=RecorderPod, description="Scheduling and resources of the recorder pod."
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Replacement of failed recorder pods."
    )
