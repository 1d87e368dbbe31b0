"""The RecordingSession API: the single source of truth for the CRD.

The pydantic models here are what the operator and recorder parse and write;
`crdgen` turns them into the CustomResourceDefinition under crds/ and the Helm
chart. Change a model, then run `python -m lucid_common.api.crdgen`.
"""

from typing import Final

from lucid_common.api.base import ApiModel, CelRule
from lucid_common.api.spec import (
    AUDIT_LABELS,
    Audit,
    CaSecretRef,
    Chunking,
    Codec,
    Compression,
    Desktop,
    Encryption,
    PublicKeySecretRef,
    RecorderPod,
    Recording,
    RecordingSessionSpec,
    ResourceList,
    Resources,
    Retention,
    RetentionMode,
    RetryPolicy,
    SessionState,
    Storage,
    StorageCredentialsRef,
    StorageTls,
    TaintEffect,
    Target,
    TargetCredentialsRef,
    TargetTls,
    TlsMode,
    Toleration,
    TolerationOperator,
)
from lucid_common.api.status import (
    ChainHead,
    Condition,
    ConditionStatus,
    ConditionType,
    Evidence,
    Phase,
    PipelineStatus,
    RecordingSessionStatus,
    Seal,
    SealSession,
    SigningKey,
    StageStats,
    StorageLocation,
    human_bytes,
)

GROUP: Final = "lucid.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "RecordingSession"
PLURAL: Final = "recordingsessions"
SINGULAR: Final = "recordingsession"
SHORT_NAMES: Final = ("rsess",)
CATEGORIES: Final = ("lucid",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

__all__ = [
    "API_VERSION",
    "AUDIT_LABELS",
    "CATEGORIES",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "ApiModel",
    "Audit",
    "CaSecretRef",
    "CelRule",
    "ChainHead",
    "Chunking",
    "Codec",
    "Compression",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Desktop",
    "Encryption",
    "Evidence",
    "Phase",
    "PipelineStatus",
    "PublicKeySecretRef",
    "RecorderPod",
    "Recording",
    "RecordingSessionSpec",
    "RecordingSessionStatus",
    "ResourceList",
    "Resources",
    "Retention",
    "RetentionMode",
    "RetryPolicy",
    "Seal",
    "SealSession",
    "SessionState",
    "SigningKey",
    "StageStats",
    "Storage",
    "StorageCredentialsRef",
    "StorageLocation",
    "StorageTls",
    "TaintEffect",
    "Target",
    "TargetCredentialsRef",
    "TargetTls",
    "TlsMode",
    "Toleration",
    "TolerationOperator",
    "human_bytes",
]
