"""Recorder settings: what the operator put in the pod, read with pydantic-settings.

The env var names come from contract.py, which the operator's pod builder
uses too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lucid_common import contract


class RecorderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=contract.ENV_PREFIX, extra="ignore")

    session_name: str = Field(description="Name of the RecordingSession this pod records.")
    session_namespace: str = Field(description="Its namespace.")
    session_uid: str = Field(description="Its UID: binds every chunk to this session.")
    # pydantic-settings reads dict fields from the environment as JSON.
    session_spec: dict[str, Any] = Field(description="The session spec (no secrets).")
    rdp_username: SecretStr = Field(description="RDP user name (from a secretKeyRef).")
    rdp_password: SecretStr = Field(description="RDP password (from a secretKeyRef).")
    storage_credentials_dir: str = Field(
        contract.STORAGE_CREDENTIALS_DIR,
        description="Mounted storage credentials Secret (files accessKey, secretKey and an "
                    "optional sessionToken), re-read when the kubelet updates it.")
    storage_auth_wait_seconds: float = Field(
        300.0, ge=0,
        description="How long a running recorder whose storage credentials are rejected "
                    "keeps re-reading them for rotated ones before it fails (the operator "
                    "sets LUCID_STORAGE_AUTH_WAIT_SECONDS).")
    termination_grace_seconds: float | None = Field(
        None, gt=0,
        description="The pod's grace period (the operator sets LUCID_TERMINATION_GRACE_SECONDS): "
                    "after SIGTERM uploads are retried until shortly before it ends, then "
                    "the recorder reports the chunks it could not upload and exits 6. "
                    "Unset: retried until killed.")
    resume_dir: str | None = Field(
        None,
        description="Where the operator's resume point is mounted (it sets this with scoped "
                    "credentials, whose write-only keys cannot read the store): what earlier "
                    "pods stored, so an empty spool continues after it. Unset: the store "
                    "is asked.")
    spool_dir: str = Field(contract.SPOOL_DIR, description="Where sealed chunks wait for upload.")
    recipient_key_dir: str = Field(contract.RECIPIENT_KEY_DIR,
                                   description="Mounted recipient public key.")
    spool_max_bytes: int = Field(
        1536 * 1024 * 1024, gt=0,
        description="Bound of the spool's disk use (chunk files and journal). The operator "
                    "sets it to 80 % of LUCID_SPOOL_SIZE_LIMIT; this default only applies "
                    "to a recorder started by hand.")
    log_format: str = Field("json", pattern="^(json|text)$", description="Log format.")
    status_interval_seconds: float = Field(
        5.0, gt=0, description="Least time between two routine status writes.")
    metrics_port: int = Field(9108, ge=0, le=65535,
                              description="Port of /metrics and /healthz (0 disables).")
