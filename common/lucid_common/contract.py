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
# The pod's terminationGracePeriodSeconds: after SIGTERM the recorder plans its last
# uploads and its last words to fit in it, instead of being SIGKILLed mid-retry.
ENV_TERMINATION_GRACE_SECONDS = f"{ENV_PREFIX}TERMINATION_GRACE_SECONDS"
# How long a running recorder keeps re-reading rotated storage credentials after the
# store rejected them, before it gives up (seconds).
ENV_STORAGE_AUTH_WAIT_SECONDS = f"{ENV_PREFIX}STORAGE_AUTH_WAIT_SECONDS"

# The RDP login arrives through secretKeyRef (read once: a new login needs a new connection).
ENV_RDP_USERNAME = f"{ENV_PREFIX}RDP_USERNAME"
ENV_RDP_PASSWORD = f"{ENV_PREFIX}RDP_PASSWORD"

SPOOL_DIR = "/var/spool/lucid"
RECIPIENT_KEY_DIR = "/etc/lucid/recipient"
RDP_CA_DIR = "/etc/lucid/rdp-ca"
STORAGE_CA_DIR = "/etc/lucid/storage-ca"
# The storage credentials, a Secret volume the kubelet keeps current, so a rotated key
# reaches a running recorder. Whatever the Secret's keys are called, the files are these;
# a session token file (temporary STS credentials) is used when present.
STORAGE_CREDENTIALS_DIR = "/etc/lucid/storage-credentials"
STORAGE_ACCESS_KEY_FILE = "accessKey"
STORAGE_SECRET_KEY_FILE = "secretKey"
STORAGE_SESSION_TOKEN_FILE = "sessionToken"
# With write-only (scoped) storage keys the recorder cannot ask the store what earlier pods
# stored: the operator's resume point (lucid_common.resume), a ConfigMap mounted here.
ENV_RESUME_DIR = f"{ENV_PREFIX}RESUME_DIR"
RESUME_DIR = "/etc/lucid/resume"
RESUME_FILE = "resume.json.gz"

# status.pipeline.state values the operator reads: Capturing makes the phase Recording.
PIPELINE_CONNECTING = "Connecting"
PIPELINE_CAPTURING = "Capturing"
PIPELINE_FINALIZED = "Finalized"
PIPELINE_FAILED = "Failed"
# The recorder stopped with sealed chunks it could not upload (lost with the pod).
PIPELINE_INCOMPLETE = "Incomplete"

# status.pipeline.screen: does the recorder see the remote session, or only the server's
# own login or error screen? (the NoScreenUpdates rule, docs/operations.md)
SCREEN_WAITING = "Waiting"      # connected; the session's screen has not arrived yet
SCREEN_SHOWN = "Shown"          # the session's screen arrived (or the logon was confirmed)
SCREEN_MISSING = "Missing"      # spec.recording.screenTimeoutSeconds passed without it
SCREEN_UNCHECKED = "Unchecked"  # the check is off (screenTimeoutSeconds: 0)

# The recorder got SIGTERM although nothing asked the recording to end (its pod was deleted,
# evicted or drained): it stored what it had and left the recording open, so the next pod
# continues it after a declared gap instead of finding it finalized.
PIPELINE_INTERRUPTED = "Interrupted"


# status.phase values after which no recorder pod follows.
ENDED_PHASES = ("Completed", "Failed")


def stop_intended(session: Mapping[str, Any]) -> bool:
    """Whether the session asks its recording to end: only the spec (state Stopped), the
    operator (status.stopReason, e.g. MaxDurationReached) or deletion may.

    The operator decides by it whether a recorder that exited completed the session; the
    recorder, whether to finalize the recording on SIGTERM (also when the session has
    ended: Failed, with its pod given the grace period).
    """
    spec = session.get("spec") or {}
    metadata = session.get("metadata") or {}
    status = session.get("status") or {}
    # An ended session (the operator failed it, then gave its pod the grace period) gets
    # no further pod: its recorder finalizes what it can.
    return (spec.get("state") == "Stopped" or bool(metadata.get("deletionTimestamp"))
            or bool(status.get("stopReason")) or status.get("phase") in ENDED_PHASES)
