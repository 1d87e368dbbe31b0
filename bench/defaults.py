"""The spec's defaults, as a session that sets no chunking or compression gets them.

Read from the API model, so a changed default moves every suite with it.
"""

from __future__ import annotations

from lucid_common.api import RecordingSessionSpec
from lucid_recorder.target import idle_seconds

_SPEC = RecordingSessionSpec.model_validate({
    "target": {"host": "127.0.0.1", "credentialsSecretRef": {"name": "unused"}},
    "storage": {"endpoint": "127.0.0.1:9000", "bucket": "unused",
                "credentialsSecretRef": {"name": "unused"}},
    "encryption": {"recipientPublicKeySecretRef": {"name": "unused"}},
})

SEGMENT_NS = _SPEC.chunking.max_seconds * 10**9
MAX_SEGMENT_BYTES = _SPEC.chunking.max_bytes
KEYFRAME_NS = _SPEC.recording.keyframe_interval_seconds * 10**9
ZSTD_LEVEL = _SPEC.compression.level
FRAME_NS = _SPEC.recording.frame_interval_ns
# The capture's Idle after one frame of quiet, as the recorder configures it.
IDLE_SECONDS = idle_seconds(_SPEC)
