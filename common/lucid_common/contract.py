"""What the operator gives a recorder pod: env var names and mount paths.

The operator's pod builder and the recorder's settings both read these, so the
two sides cannot drift apart.
"""

from collections.abc import Mapping
from typing import Any

ENV_PREFIX = "LUCID_RECORDER_"

# Identity of the session the pod records (downward API / literal, no secrets).
ENV_SESSION_NAME = f"{ENV_PREFIX}SESSION_NAME"
ENV_SESSION_NAMESPACE = f"{ENV_PREFIX}SESSION_NAMESPACE"
ENV_SESSION_UID = f"{ENV_PREFIX}SESSION_UID"
# The session spec as JSON: it never holds credentials, only references.
ENV_SESSION_SPEC = f"{ENV_PREFIX}SESSION_SPEC"

# Port of the recorder's /metrics and /healthz; 0 turns the endpoint off.
ENV_METRICS_PORT = f"{ENV_PREFIX}METRICS_PORT"
# Bound of the spool (bytes): the operator derives it from the spool volume's sizeLimit.
ENV_SPOOL_MAX_BYTES = f"{ENV_PREFIX}SPOOL_MAX_BYTES"

# Credentials arrive only through secretKeyRef.
ENV_RDP_USERNAME = f"{ENV_PREFIX}RDP_USERNAME"
ENV_RDP_PASSWORD = f"{ENV_PREFIX}RDP_PASSWORD"
ENV_STORAGE_ACCESS_KEY = f"{ENV_PREFIX}STORAGE_ACCESS_KEY"
ENV_STORAGE_SECRET_KEY = f"{ENV_PREFIX}STORAGE_SECRET_KEY"

SPOOL_DIR = "/var/spool/lucid"
RECIPIENT_KEY_DIR = "/etc/lucid/recipient"
RDP_CA_DIR = "/etc/lucid/rdp-ca"
STORAGE_CA_DIR = "/etc/lucid/storage-ca"

# status.pipeline.state values the operator reads: Capturing makes the phase Recording.
PIPELINE_CONNECTING = "Connecting"
PIPELINE_CAPTURING = "Capturing"
PIPELINE_FINALIZED = "Finalized"
PIPELINE_FAILED = "Failed"
# The recorder got SIGTERM although nothing asked the recording to end (its pod was deleted,
# evicted or drained): it stored what it had and left the recording open, so the next pod
# continues it after a declared gap instead of finding it finalized.
PIPELINE_INTERRUPTED = "Interrupted"


def stop_intended(session: Mapping[str, Any]) -> bool:
    """Whether the session asks its recording to end: only the spec (state Stopped), the
    operator (status.stopReason, e.g. MaxDurationReached) or deletion may.

    The operator decides by it whether a recorder that exited completed the session; the
    recorder, whether to finalize the recording on SIGTERM.
    """
    spec = session.get("spec") or {}
    metadata = session.get("metadata") or {}
    status = session.get("status") or {}
    return (spec.get("state") == "Stopped" or bool(metadata.get("deletionTimestamp"))
            or bool(status.get("stopReason")))
