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
        description="Grace period the recorder gets to flush and write its manifest.")
    delete_timeout_seconds: int = Field(
        300, ge=10,
        description="How long a deleted session waits for its recorder to flush "
                    "before the pod is force-removed, so deletion is never blocked forever.")
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
