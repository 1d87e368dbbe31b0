"""Operator settings, from LUCID_* environment variables (pydantic-settings)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lucid_operator.quantity import quantity_value
from lucid_operator.spool_budget import BOUND_PERCENT, check_limit, minimum_limit_text


class OperatorSettings(BaseSettings):
    """How the operator runs. Every field is an environment variable `LUCID_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="LUCID_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch; empty means cluster-wide.",
    )
    recorder_image: str = Field(
        "ghcr.io/lucid-dev/lucid-recorder:0.1.0", description="Image of the recorder pods.")
    recorder_command: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["lucid-recorder"],
        description="Command the recorder container runs (comma-separated).",
    )
    recorder_metrics_port: int = Field(
        9108, ge=0, le=65535,
        description="Port of each recorder pod's /metrics and /healthz (0 turns them off).")
    recorder_uid: int = Field(65532, ge=1, description="Non-root UID/GID recorder pods run as.")
    recorder_cpu_request: str = Field("250m", description="Default recorder CPU request.")
    recorder_memory_request: str = Field("256Mi", description="Default recorder memory request.")
    recorder_cpu_limit: str = Field("1", description="Default recorder CPU limit.")
    recorder_memory_limit: str = Field("512Mi", description="Default recorder memory limit.")
    recorder_ephemeral_storage_request: str | None = Field(
        None, description="Default recorder ephemeral-storage request; unset means none.")
    recorder_ephemeral_storage_limit: str | None = Field(
        None, description="Default recorder ephemeral-storage limit; unset means none.")
    spool_size_limit: str = Field(
        "2Gi",
        description="Size limit of the recorder's spool emptyDir (a quantity). The recorder "
                    f"is told to push back at {BOUND_PERCENT} % of it "
                    "(LUCID_RECORDER_SPOOL_MAX_BYTES), before a kubelet would evict the pod; "
                    f"at least {minimum_limit_text()}.")
    termination_grace_seconds: int = Field(
        60, ge=5, le=3600,
        description="Grace period the recorder gets to flush and write its manifest, on a "
                    "stop, a deletion or a failure. It stops retrying uploads shortly before "
                    "it ends (20 %, at most 10 s, are kept for its last words) and reports "
                    "the chunks it could not upload. Raise it to ride out longer storage "
                    "outages at stop time.")
    delete_timeout_seconds: int = Field(
        300, ge=10,
        description="How long a deleted session waits for its recorder to flush "
                    "before the pod is force-removed, so deletion is never blocked forever. "
                    "Must exceed LUCID_TERMINATION_GRACE_SECONDS.")
    storage_auth_wait_seconds: int = Field(
        300, ge=0, le=86400,
        description="How long a running recorder whose storage credentials the store "
                    "rejects keeps re-reading its mounted Secret for rotated ones (the "
                    "spool holds the chunks meanwhile) before the session fails; a kubelet "
                    "takes up to about two minutes to update a mounted Secret.")
    reachability_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="TCP connect timeout of the RDP target pre-check.")
    retry_backoff_seconds: float = Field(
        5.0, gt=0, description="First delay before a failed check or pod is retried; doubles.")
    retry_backoff_max_seconds: float = Field(
        300.0, gt=0, description="Upper bound of the retry delay.")
    handler_threads: int = Field(
        16, ge=1, le=1024,
        description="Threads that run the (synchronous) handlers: how many sessions are "
                    "reconciled at once (kopf settings.execution.max_workers).")
    worker_limit: int | None = Field(
        None, ge=1,
        description="Most per-object event workers kopf runs at once; unset means one per "
                    "object with pending events (kopf settings.queueing.worker_limit).")
    worker_idle_timeout_seconds: float = Field(
        5.0, gt=0,
        description="How long an idle per-object worker lingers before it exits "
                    "(kopf settings.queueing.idle_timeout).")
    consistency_timeout_seconds: float = Field(
        5.0, ge=0,
        description="How long kopf waits for its own patch to come back through the watch "
                    "before it handles a possibly stale object; a watch lagging longer "
                    "re-runs handlers (kopf settings.persistence.consistency_timeout).")
    operator_namespace: str = Field(
        "lucid-system",
        description="Namespace the operator runs in (the chart sets it): holds its signing "
                    "key Secret and the ConfigMap publishing the public key.")
    signing_key_secret: str = Field(
        "lucid-operator-signing-key",
        description="Secret (key privateKey, an ed25519 PEM) with which the operator "
                    "countersigns recordings; created with a new key when absent.")
    public_key_configmap: str = Field(
        "lucid-operator-public-key",
        description="ConfigMap where the operator publishes its public key (keys publicKey, "
                    "keyId) for `lucid-seal verify --operator-key`.")
    seal_checkpoint_seconds: float = Field(
        60.0, gt=0,
        description="How often, at most, the operator countersigns a growing recording "
                    "(a new recorder run and the end of a session are sealed at once).")
    storage_scoped_credentials: bool = Field(
        True,
        description="Give each recorder temporary storage keys of its own instead of the "
                    "session's storage Secret (false: the recorder pod gets that Secret, "
                    "for a store without STS): the operator calls STS AssumeRole with that "
                    "Secret's key and a session policy that allows writing the session's "
                    "prefix only, keeps the keys in the Secret <session>-storage-session "
                    "owned by the session, and renews them. Needs a store with STS (MinIO, "
                    "Ceph RGW, AWS, SeaweedFS with its IAM config).")
    storage_credentials_duration_seconds: int = Field(
        3600, ge=900, le=43200,
        description="Lifetime asked of each set of scoped storage keys; they are renewed "
                    "with a third of it left (at least five minutes).")
    storage_sts_role_arn: str | None = Field(
        None,
        description="RoleArn sent with AssumeRole, for stores that need one (AWS, "
                    "SeaweedFS); MinIO ignores it.")
    log_format: Literal["json", "text"] = Field("json", description="Operator log format.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Operator log level.")
    health_port: int = Field(
        8080, ge=0, le=65535,
        description="Port of the liveness/readiness endpoint /healthz (0 disables it).")
    metrics_port: int = Field(
        9090, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint (0 disables).")
    peering_name: str = Field(
        "lucid", description="kopf peering object; replicas with one name elect one active.")
    standalone: bool = Field(
        False, description="Run without peering (single replica, no kopf peering CRDs).")
    priority: int | None = Field(
        None,
        description="kopf peering priority of this replica; unset picks a random one, since "
        "replicas of equal priority all pause.")

    @model_validator(mode="after")
    def _delete_outlasts_grace(self) -> Self:
        # Otherwise a deletion force-removes the pod while the recorder still has time to
        # flush, and its last words (the chunks it could not upload) are never written.
        if self.delete_timeout_seconds <= self.termination_grace_seconds:
            raise ValueError(
                f"LUCID_DELETE_TIMEOUT_SECONDS ({self.delete_timeout_seconds}) must exceed "
                f"LUCID_TERMINATION_GRACE_SECONDS ({self.termination_grace_seconds}); set it "
                f"to at least {self.termination_grace_seconds + 10}")
        return self

    @field_validator("spool_size_limit")
    @classmethod
    def _spool_fits_a_chunk(cls, value: str) -> str:
        check_limit(value)  # ValueError names the value and the least that works
        return value

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        # Kubernetes refuses a pod whose request exceeds its limit: every recorder would be.
        problems = []
        for resource in ("cpu", "memory", "ephemeral_storage"):
            request = getattr(self, f"recorder_{resource}_request")
            limit = getattr(self, f"recorder_{resource}_limit")
            for value in (request, limit):
                if value is not None:
                    quantity_value(value)  # ValueError names the value
            if request is not None and limit is not None and \
                    quantity_value(request) > quantity_value(limit):
                name = f"LUCID_RECORDER_{resource.upper()}"
                problems.append(f"{name}_REQUEST ({request}) is more than {name}_LIMIT "
                                f"({limit}): Kubernetes refuses a pod whose request exceeds "
                                "its limit")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("namespaces", "recorder_command", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        # Environment variables carry lists as "a,b,c" rather than JSON.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
