"""Pure status logic: conditions per the Kubernetes API conventions, and the phase.

Nothing here talks to the API server; handlers feed observations in and patch
out what these functions return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lucid_common import contract
from lucid_common.api import ConditionType, Phase

TERMINAL_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED})

# Condition types the operator owns.
READY = ConditionType.READY.value
REFERENCES_RESOLVED = "ReferencesResolved"
TARGET_REACHABLE = "TargetReachable"
RECORDER_RUNNING = "RecorderRunning"
DEGRADED = "Degraded"
# The recorder sees only the server's own login or error screen (a refused login).
NO_SCREEN_UPDATES = "NoScreenUpdates"
WAITING_FOR_SCREEN = "WaitingForScreen"
# The recorder stopped with sealed chunks storage never took; they are lost.
CHUNKS_NOT_UPLOADED = "ChunksNotUploaded"
# A finished one-shot is not an error: Succeeded is True on Completed, False on Failed,
# absent while the session runs (like a Job's Complete/Failed conditions).
SUCCEEDED = "Succeeded"

# Degraded reasons the operator sets for a spec or setting that no retry can get past;
# the recorder's own problems carry RecorderDegraded.
RECORDER_DEGRADED = "RecorderDegraded"
CONFIG_DEGRADED = frozenset({"PodRejected", "SpoolTooSmall"})
# Ready's reason while the recorder pod goes away although the spec says Recording.
RECORDER_LOST = "RecorderLost"


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None means Unknown.
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.status]


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: Iterable[dict[str, Any]],
    updates: Iterable[ConditionUpdate],
    generation: int,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Apply updates to a condition list.

    lastTransitionTime moves only when a condition's status flips, so a
    repeated reconcile (handlers may run twice) changes nothing but
    observedGeneration. Conditions not named in `updates` are kept as they are.
    """
    by_type = {c["type"]: dict(c) for c in current}
    for update in updates:
        previous = by_type.get(update.type)
        transitioned = previous is None or previous.get("status") != update.status_text
        by_type[update.type] = {
            "type": update.type,
            "status": update.status_text,
            "reason": update.reason,
            "message": update.message,
            "observedGeneration": generation,
            "lastTransitionTime": rfc3339(now) if transitioned
            else previous["lastTransitionTime"],  # type: ignore[index]
        }
    return sorted(by_type.values(), key=lambda c: c["type"])


@dataclass(frozen=True)
class PodView:
    """What the operator needs to know about its recorder pod.

    Recorder pods restart their container in place (restartPolicy OnFailure),
    so the spool on their emptyDir survives a crash; `failures` counts the
    failed runs of that container so far, `reason`/`message` describe the
    latest one.
    """

    name: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    terminating: bool = False
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    restarts: int = 0
    failures: int = 0
    crash_looping: bool = False

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> PodView:
        status = pod.get("status") or {}
        base = {
            "name": pod["metadata"]["name"],
            "phase": status.get("phase", "Pending"),
            "terminating": bool(pod["metadata"].get("deletionTimestamp")),
            "reason": status.get("reason", ""),
            "message": status.get("message", ""),
        }
        for container in status.get("containerStatuses") or []:
            state = container.get("state") or {}
            last = (container.get("lastState") or {}).get("terminated") or {}
            restarts = int(container.get("restartCount") or 0)
            base["restarts"] = restarts
            base["failures"] = restarts
            if "terminated" in state:
                term = state["terminated"]
                failed = term.get("exitCode") not in (None, 0)
                return cls(**{**base, "exit_code": term.get("exitCode"),
                              "reason": term.get("reason") or base["reason"],
                              "message": term.get("message") or base["message"],
                              "failures": max(restarts, int(failed))})
            waiting = state.get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                # Kubelets count the pending restart either already or only once it
                # happens; at least one failure lies behind a back-off either way.
                return cls(**{**base, "exit_code": last.get("exitCode"),
                              "reason": last.get("reason") or "CrashLoopBackOff",
                              "message": last.get("message") or waiting.get("message", ""),
                              "failures": max(restarts, 1), "crash_looping": True})
            if waiting.get("reason"):
                return cls(**{**base, "reason": waiting["reason"],
                              "message": waiting.get("message", "")})
            if last and restarts:
                return cls(**{**base, "exit_code": last.get("exitCode"),
                              "reason": last.get("reason") or "", "message":
                              last.get("message") or ""})
        return cls(**base)


@dataclass(frozen=True)
class Observation:
    desired_state: str  # "Recording" or "Stopped"
    deleting: bool
    previous_phase: Phase | None
    pod: PodView | None
    pod_gone_after_start: bool = False
    recorder_capturing: bool = False
    stop_reason: str = ""
    # status.pipeline.screen and .message: the NoScreenUpdates rule's verdict.
    screen: str = ""
    pipeline_message: str = ""
    # The recorder's last words when it stopped with chunks not uploaded (state Incomplete).
    incomplete: str = ""
    # The pod's name even when it is gone (pod is then None), for messages.
    pod_name: str = ""

    @property
    def stopping(self) -> bool:
        """Something asked the recording to end (lucid_common.contract.stop_intended)."""
        return self.desired_state == "Stopped" or self.deleting or bool(self.stop_reason)


def derive_phase(obs: Observation) -> tuple[Phase, list[ConditionUpdate]]:
    """Phase and pod-derived conditions from what was observed. Terminal phases stick."""
    if obs.previous_phase in TERMINAL_PHASES:
        return obs.previous_phase, []
    pod = obs.pod
    stopping = obs.stopping

    if pod is not None and _failed(pod):
        reason = pod.reason or "RecorderFailed"
        message = f"recorder pod {pod.name} failed"
        if pod.exit_code is not None:
            message += f" with exit code {pod.exit_code}"
        if obs.incomplete:
            # Its status carries the one line that matters, not the log's tail.
            message += f": {obs.incomplete}"
            return Phase.FAILED, failed_updates(CHUNKS_NOT_UPLOADED, CHUNKS_NOT_UPLOADED,
                                                message)
        if pod.message:
            message += f": {pod.message}"
        return Phase.FAILED, failed_updates(_camel(reason), "RecorderFailed", message)
    ended = (pod is not None and pod.phase == "Succeeded") or (
        pod is None and obs.pod_gone_after_start)
    if ended and stopping:
        why = stop_reason_of(obs)
        return Phase.COMPLETED, completed_updates(why, "recorder exited cleanly")
    if ended or (pod is not None and pod.terminating and not stopping):
        # Nothing asked the recording to end: the pod was deleted, evicted or its node
        # lost. That is no completion; the caller replaces the pod or gives up.
        message = lost_message(obs)
        return Phase.PENDING, [
            ConditionUpdate(RECORDER_RUNNING, False,
                            "PodLost" if ended else "PodTerminating", message),
            ConditionUpdate(READY, False, RECORDER_LOST, message),
        ]
    if stopping:
        return Phase.STOPPING, [
            ConditionUpdate(READY, False, "Stopping", "waiting for the recorder to flush"),
        ]
    if pod is None:
        return Phase.PENDING, [
            ConditionUpdate(RECORDER_RUNNING, False, "PodNotCreated", "no recorder pod yet"),
            ConditionUpdate(READY, False, "Pending", "recorder pod not created yet"),
        ]
    if pod.crash_looping:
        detail = f"recorder exited with code {pod.exit_code} and restarts"
        if pod.message:
            detail += f": {pod.message}"
        return Phase.PENDING, [
            ConditionUpdate(RECORDER_RUNNING, False, "CrashLoopBackOff", detail),
            ConditionUpdate(READY, False, "RecorderRestarting", detail),
        ]
    if pod.phase != "Running":
        detail = pod.message or pod.reason or f"pod phase {pod.phase}"
        return Phase.PENDING, [
            ConditionUpdate(RECORDER_RUNNING, False, _camel(pod.reason or "PodPending"), detail),
            ConditionUpdate(READY, False, "Pending", f"recorder pod {pod.name}: {detail}"),
        ]
    if not obs.recorder_capturing:
        return Phase.CONNECTING, [
            ConditionUpdate(RECORDER_RUNNING, True, "PodRunning", f"pod {pod.name} is running"),
            ConditionUpdate(READY, False, "Connecting", "recorder is connecting to the target"),
        ]
    running = ConditionUpdate(RECORDER_RUNNING, True, "PodRunning", f"pod {pod.name} is running")
    if obs.screen == contract.SCREEN_MISSING:
        return Phase.RECORDING, [running, ConditionUpdate(
            READY, False, NO_SCREEN_UPDATES,
            obs.pipeline_message or "the recorder sees no screen of the remote session")]
    if obs.screen == contract.SCREEN_WAITING:
        return Phase.RECORDING, [running, ConditionUpdate(
            READY, False, WAITING_FOR_SCREEN,
            "connected; waiting for the remote session's first screen "
            "(spec.recording.screenTimeoutSeconds)")]
    return Phase.RECORDING, [
        running,
        ConditionUpdate(READY, True, "Recording", "recorder is capturing the session"),
    ]


def ready_reason(pipeline: dict[str, Any]) -> str:
    """The Ready reason a Recording session's pipeline calls for (see derive_phase)."""
    screen = pipeline.get("screen")
    if screen == contract.SCREEN_MISSING:
        return NO_SCREEN_UPDATES
    if screen == contract.SCREEN_WAITING:
        return WAITING_FOR_SCREEN
    return "Recording"


def stop_reason_of(obs: Observation) -> str:
    """Why a stopping session stops: the recorded reason, else deletion or the spec."""
    return obs.stop_reason or ("SessionDeleted" if obs.deleting else "StoppedBySpec")


def pod_lost(obs: Observation) -> bool:
    """The recorder pod ended although nothing asked the recording to end."""
    if obs.stopping or obs.previous_phase in TERMINAL_PHASES:
        return False
    if obs.pod is None:
        return obs.pod_gone_after_start
    return obs.pod.phase == "Succeeded" and not _failed(obs.pod)


def lost_message(obs: Observation) -> str:
    name = obs.pod.name if obs.pod is not None else obs.pod_name
    if obs.pod is not None and obs.pod.phase != "Succeeded":
        return (f"recorder pod {name} is being deleted while spec.state is Recording; "
                "it stores what it has, and a new pod continues the recording after a "
                "declared gap")
    return (f"recorder pod {name} ended while spec.state is Recording (deleted, evicted "
            "or its node lost)")


def completed_updates(why: str, how: str) -> list[ConditionUpdate]:
    """A finished recording is the session's good end: Ready and Succeeded say so."""
    return [
        ConditionUpdate(RECORDER_RUNNING, False, "Completed", how),
        ConditionUpdate(READY, True, "Completed", f"recording completed ({why})"),
        ConditionUpdate(SUCCEEDED, True, why, f"recording completed ({why})"),
    ]


def failed_updates(running_reason: str, reason: str, message: str) -> list[ConditionUpdate]:
    return [
        ConditionUpdate(RECORDER_RUNNING, False, running_reason, message),
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(SUCCEEDED, False, reason, message),
    ]


def degraded_update(pipeline: dict[str, Any], conditions: Iterable[dict[str, Any]]
                    ) -> ConditionUpdate | None:
    """Degraded mirrors the recorder's reported problem; None when it already does.

    A Degraded the operator set for the configuration (CONFIG_DEGRADED) is not the
    recorder's to clear: it stays until a pod is accepted.
    """
    message = pipeline.get("message") or ""
    current = next((c for c in conditions if c.get("type") == DEGRADED), None)
    if current is not None and current.get("status") == "True" and \
            current.get("reason") in CONFIG_DEGRADED:
        return None
    missing = pipeline.get("screen") == contract.SCREEN_MISSING
    if message or missing:
        reason = NO_SCREEN_UPDATES if missing else RECORDER_DEGRADED
        message = message or "the recorder sees no screen of the remote session"
        if (current and current.get("status") == "True" and current.get("message") == message
                and current.get("reason") == reason):
            return None
        return ConditionUpdate(DEGRADED, True, reason, message)
    if current is None or current.get("status") == "False":
        return None
    return ConditionUpdate(DEGRADED, False, "Healthy", "the recorder reports no problem")


def config_degraded(reason: str, message: str) -> ConditionUpdate:
    return ConditionUpdate(DEGRADED, True, reason, message)


def config_recovered(conditions: Iterable[dict[str, Any]], reasons: Iterable[str]
                     ) -> list[ConditionUpdate]:
    """Clear a configuration Degraded of one of `reasons` once it no longer holds."""
    current = next((c for c in conditions if c.get("type") == DEGRADED), None)
    if current is None or current.get("status") != "True" or \
            current.get("reason") not in set(reasons):
        return []
    return [ConditionUpdate(DEGRADED, False, "ConfigurationAccepted",
                            f"resolved: {current.get('message', '')}"[:1024])]


def _failed(pod: PodView) -> bool:
    return pod.phase == "Failed" or (pod.phase == "Succeeded" and pod.exit_code not in (None, 0))


def _camel(reason: str) -> str:
    """Condition reasons are CamelCase identifiers; pod reasons mostly are already."""
    cleaned = "".join(part[:1].upper() + part[1:] for part in reason.replace("-", " ").split())
    return "".join(ch for ch in cleaned if ch.isalnum()) or "Unknown"


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2*base, 4*base, ... never above cap."""
    return float(min(cap, base * (2 ** max(0, attempt))))
