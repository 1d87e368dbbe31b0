"""RecordingSession.status: what the operator and the recorder report.

The operator owns everything except `pipeline`, which the recorder patches as
chunks are stored. Write status with `to_k8s()` (a merge patch): the CRD
declares no field nullable.
"""

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from lucid_common.api.base import ApiModel
from lucid_common.api.types import Timestamp

# metav1.Condition's own limits, so conditions look like every other resource's.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Phase(StrEnum):
    """Lifecycle phase of a session."""

    PENDING = "Pending"
    CONNECTING = "Connecting"
    RECORDING = "Recording"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """Condition types the operator sets. The schema accepts any well-formed type."""

    # The printer column "Ready" reads this one.
    READY = "Ready"


class Condition(ApiModel):
    """An observation of one aspect of the session, shaped like metav1.Condition."""

    type: str = Field(
        max_length=316, pattern=CONDITION_TYPE_PATTERN, description="Condition type, e.g. Ready."
    )
    status: ConditionStatus = Field(
        json_schema_extra={"maxLength": 8}, description="True, False or Unknown."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        "", max_length=32768, description="Human-readable details of the last transition."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the condition was computed from."
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed from one value to another."
    )


class StageStats(ApiModel):
    """Counters of one stage of the recorder's pipeline (capture, compress, encrypt, upload)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z][a-z0-9-]*$",
        description="Stage name, e.g. capture, compress, encrypt, upload.",
    )
    items: int = Field(0, ge=0, description="Items (updates or chunks) the stage has processed.")
    bytes_in: int = Field(0, ge=0, description="Bytes that entered the stage.")
    bytes_out: int = Field(0, ge=0, description="Bytes that left the stage.")
    errors: int = Field(0, ge=0, description="Errors the stage has hit.")
    processing_seconds: float = Field(
        0.0, ge=0, description="Total time the stage spent working, in seconds."
    )
    last_processed_at: Timestamp | None = Field(
        None, description="When the stage last finished an item."
    )


class StorageLocation(ApiModel):
    """Where this session's chunks are."""

    bucket: str = Field(max_length=63, description="Bucket holding the chunks.")
    prefix: str = Field(max_length=1024, description="Object key prefix of this session's chunks.")


def human_bytes(size: int) -> str:
    """IEC rendering for the Stored printer column: 0 B, 512 B, 1.5 KiB, 12.0 GiB."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    return f"{value:.1f} {unit}"


_B64_KEY = r"^[A-Za-z0-9+/]{43}=$"
_SHA256_HEX = r"^[0-9a-f]{64}$"


class SigningKey(ApiModel):
    """A recorder run's signing key: one per key epoch (one recorder process's life)."""

    epoch: int = Field(ge=0, le=2**32 - 1, description="Key epoch the run sealed under.")
    public_key: str = Field(
        max_length=44, pattern=_B64_KEY, description="Raw ed25519 public key, base64 (32 bytes)."
    )


class ChainHead(ApiModel):
    """The stored prefix of the recording: chunks 0..chunks-1, the last one's hash."""

    chunks: int = Field(0, ge=0, description="Chunks stored, from chunk 0 without a hole.")
    sha256: str | None = Field(
        None, max_length=64, pattern=_SHA256_HEX,
        description="SHA-256 of the last stored chunk's bytes.",
    )


class SealSession(ApiModel):
    """The session a seal is about."""

    namespace: str = Field(max_length=63, description="Namespace of the session.")
    name: str = Field(max_length=253, description="Name of the session.")
    uid: str = Field(max_length=128, description="UID of the session.")


class Seal(ApiModel):
    """The operator's countersignature of what it saw of the recording (docs/storage.md).

    Signed with the operator's ed25519 key over everything but `signature`; a bucket
    writer cannot make or alter one. A copy is stored in the bucket next to the manifest.
    """

    format: str = Field("lucid.seal/v1", max_length=32, description="Seal format.")
    session: SealSession = Field(description="Namespace, name and UID of the session.")
    counter: int = Field(
        ge=1, description="Number of this seal; each later seal of the session is higher."
    )
    state: str = Field(
        max_length=16, description="Session phase when sealed (Recording, Completed, Failed...)."
    )
    final: bool = Field(False, description="The session had ended: nothing follows this seal.")
    recorder_finalized: bool = Field(
        False, description="The recorder reported its final manifest written (Finalized)."
    )
    signing_keys: list[SigningKey] = Field(
        default_factory=list,
        max_length=1024,
        description="Every recorder run's signing key the operator saw, by key epoch.",
    )
    chunks: int = Field(0, ge=0, description="Chunks stored, as the recorder reported them.")
    chain_head: str | None = Field(
        None, max_length=64, pattern=_SHA256_HEX, description="SHA-256 of the last of those chunks."
    )
    sealed_at: str = Field(max_length=32, description="When the operator signed (RFC 3339).")
    operator_key_id: str | None = Field(
        None, max_length=64, pattern=_SHA256_HEX,
        description="SHA-256 of the operator's raw public key.",
    )
    signature: str | None = Field(
        None, max_length=128, description="ed25519 signature, base64."
    )


class Evidence(ApiModel):
    """The operator's seals of the recording, written by the operator only."""

    seal: Seal | None = Field(None, description="The latest seal: the anchor outside the bucket.")
    stored_counter: int = Field(
        0, ge=0, description="Counter of the last seal also written into the bucket."
    )
    message: str | None = Field(
        None, max_length=1024, description="Why the last seal is not in the bucket yet."
    )


class PipelineStatus(ApiModel):
    """Progress of the recording pipeline, written by the recorder."""

    state: str | None = Field(
        None,
        max_length=32,
        # Open-ended on purpose: the recorder's states are its own; the operator
        # only looks for "Capturing".
        pattern=r"^[A-Z][A-Za-z]*$",
        description="Recorder's own state, e.g. Connecting, Capturing, Draining (CamelCase).",
    )
    message: str | None = Field(
        None,
        max_length=1024,
        description="The recorder's current problem in one line (e.g. a storage outage being "
        "retried); empty when healthy.",
    )
    screen: str | None = Field(
        None,
        max_length=16,
        pattern=r"^[A-Z][A-Za-z]*$",
        description="Whether the recorder sees the remote session rather than only the "
        "server's own login or error screen: Waiting (connected, not yet), Shown, Missing "
        "(spec.recording.screenTimeoutSeconds passed without it: NoScreenUpdates) or "
        "Unchecked (the check is off).",
    )
    unstored_chunks: str | None = Field(
        None,
        max_length=256,
        description="Sequence numbers of the sealed chunks the recorder could not upload "
        "before it had to stop, as ranges (e.g. 12-17); set with state Incomplete.",
    )
    stages: list[StageStats] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per-stage counters, one entry per stage name.",
    )
    chunks_stored: int = Field(0, ge=0, description="Chunks stored in the bucket so far.")
    bytes_stored: int = Field(0, ge=0, description="Bytes stored in the bucket so far.")
    stored_human: str = Field(
        "0 B",
        max_length=32,
        description="bytesStored in readable form (for the Stored column); derived, not input.",
    )
    updates_captured: int = Field(0, ge=0, description="Screen updates received from the server.")
    last_chunk_at: Timestamp | None = Field(None, description="When the last chunk was stored.")
    upload_lag_seconds: float | None = Field(
        None,
        ge=0,
        description="Age of the oldest recorded data not yet stored, in seconds.",
    )
    location: StorageLocation | None = Field(
        None, description="Bucket and key prefix where this session's chunks are stored."
    )
    signing_key: SigningKey | None = Field(
        None,
        description="This recorder run's ed25519 public key, which signs its chunks and "
        "manifests; the operator countersigns it.",
    )
    chain_head: ChainHead | None = Field(
        None, description="How far the stored recording reaches: what the operator seals."
    )

    @field_validator("stages")
    @classmethod
    def stage_names_unique(cls, stages: list[StageStats]) -> list[StageStats]:
        # Mirrors x-kubernetes-list-map-keys, which the apiserver enforces natively.
        names = [stage.name for stage in stages]
        if len(names) != len(set(names)):
            raise ValueError(f"stage names must be unique, got {names}")
        return stages

    @model_validator(mode="after")
    def derive_stored_human(self) -> Self:
        # Derived here so the recorder cannot publish a column that disagrees
        # with bytesStored.
        self.stored_human = human_bytes(self.bytes_stored)
        return self


# kopf keeps its handler progress under status.kopf; its shape is kopf's
# business, so the apiserver must keep whatever is there.
KopfState = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class RecordingSessionStatus(ApiModel):
    """Observed state of a RecordingSession."""

    phase: Phase | None = Field(
        None, json_schema_extra={"maxLength": 16}, description="Where the session is in its life."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Latest observations of the session, one per condition type.",
    )
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the operator last acted on."
    )
    pod_name: str | None = Field(
        None, max_length=253, description="Name of the current recorder pod."
    )
    started_at: Timestamp | None = Field(None, description="When recording started.")
    stopped_at: Timestamp | None = Field(None, description="When recording stopped.")
    retries: int = Field(
        0, ge=0,
        description="Recorder failures and lost pods so far (in-place restarts and replacement "
        "pods), counted against spec.retry.maxRetries; a reconfiguration is not counted.",
    )
    next_retry_at: Timestamp | None = Field(
        None, description="When the next replacement pod is due; set only while one is pending."
    )
    stop_reason: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=CONDITION_REASON_PATTERN,
        description="Why the recording stopped or is stopping (CamelCase), e.g. StoppedBySpec.",
    )
    pipeline: PipelineStatus | None = Field(
        None, description="Recording progress, written by the recorder."
    )
    evidence: Evidence | None = Field(
        None, description="The operator's countersignatures of the recording."
    )
    kopf: KopfState | None = Field(
        None, description="Handler progress kept by the kopf framework; not part of the API."
    )

    @field_validator("conditions")
    @classmethod
    def condition_types_unique(cls, conditions: list[Condition]) -> list[Condition]:
        # Mirrors x-kubernetes-list-map-keys, which the apiserver enforces natively.
        types = [condition.type for condition in conditions]
        if len(types) != len(set(types)):
            raise ValueError(f"condition types must be unique, got {types}")
        return conditions

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
