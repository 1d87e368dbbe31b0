"""The operator's decisions, free of kopf: what to create, stop or report, given what is observed.

Handlers (handlers.py) call these and turn `Retry` into kopf's TemporaryError
and the returned `Event`s into Kubernetes Events. Every function here is safe
to run twice: creation is by deterministic name, status writes are merges.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from lucid_common import contract, resume
from lucid_common.api import RecordingSessionSpec, Seal
from lucid_common.evidence import sign_seal
from lucid_common.layout import session_root
from lucid_common.resume import ResumePointError
from lucid_operator import builders, evidence, resume_point
from lucid_operator.builders import SessionRef
from lucid_operator.checks import check_reachable, check_references
from lucid_operator.conditions import (
    CHUNKS_NOT_UPLOADED,
    NO_SCREEN_UPDATES,
    READY,
    RECORDER_LOST,
    RECORDER_RUNNING,
    TERMINAL_PHASES,
    ConditionUpdate,
    Observation,
    Phase,
    PodView,
    completed_updates,
    config_degraded,
    config_recovered,
    degraded_update,
    derive_phase,
    failed_updates,
    lost_message,
    merge_conditions,
    pod_lost,
    ready_reason,
    retry_delay,
    rfc3339,
    stop_reason_of,
)
from lucid_operator.kube import Kube
from lucid_operator.seal_store import SealStoreError, client_for, put_seal
from lucid_operator.settings import OperatorSettings
from lucid_operator.spool_budget import session_spool_problem
from lucid_operator.storage_access import ensure_session_credentials

ATTEMPT_LABEL = "lucid.dev/attempt"
# status.retries when the pod was created: its own restarts count on from there, so
# in-place restarts and replacement pods share one retry.maxRetries budget.
RETRIES_ANNOTATION = "lucid.dev/retries-before"

# Spec fields the recorder reads when it starts: a change replaces the running pod (the
# recording continues after a declared gap). The others apply at once.
RESTART_FIELDS = ("recording", "chunking", "compression", "recorderPod")
LIVE_FIELDS = ("maxDurationSeconds", "retry")


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


class Retry(Exception):
    """Try again after `delay` seconds; the message says what is being waited for."""

    def __init__(self, message: str, delay: float, events: list[Event] | None = None) -> None:
        super().__init__(message)
        self.delay = delay
        self.events = events or []


class InvalidSpec(Exception):
    """The spec passed the CRD schema but not the models (the two should never disagree)."""


def ref_of(session: dict[str, Any]) -> SessionRef:
    meta = session["metadata"]
    return SessionRef(meta["namespace"], meta["name"], meta["uid"])


def parse_spec(session: dict[str, Any]) -> RecordingSessionSpec:
    try:
        return RecordingSessionSpec.model_validate(session.get("spec") or {})
    except ValidationError as exc:
        raise InvalidSpec(f"spec is invalid: {exc.error_count()} error(s): "
                          + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                      for e in exc.errors())) from exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _status(session: dict[str, Any]) -> dict[str, Any]:
    return session.get("status") or {}


def _phase(session: dict[str, Any]) -> Phase | None:
    value = _status(session).get("phase")
    return Phase(value) if value else None


def attempt_of(session: dict[str, Any]) -> int:
    return int(_status(session).get("retries") or 0)


def is_terminal(session: dict[str, Any]) -> bool:
    return _phase(session) in TERMINAL_PHASES


def pod_name(ref: SessionRef, index: int) -> str:
    # Each pod of a session gets its own name, so a failed one stays inspectable and a
    # replacement never collides with its predecessor while that one still flushes.
    return builders.child_name(ref.name, f"recorder-{index}")


def pod_index(name: str | None) -> int:
    """The index of `<session>-recorder-<n>`; 0 when there is no pod name yet."""
    tail = (name or "").rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _retries_before(pod: dict[str, Any]) -> int:
    meta = pod["metadata"]
    value = (meta.get("annotations") or {}).get(RETRIES_ANNOTATION)
    if value is None:  # a pod of an older operator, named and labelled by its retry count
        value = (meta.get("labels") or {}).get(ATTEMPT_LABEL)
    return int(value) if value and str(value).isdigit() else 0


def _conditions_patch(session: dict[str, Any], updates: list[ConditionUpdate]) -> list[Any]:
    generation = session["metadata"].get("generation", 1)
    return merge_conditions(_status(session).get("conditions") or [], updates, generation, _now())


def write_status(kube: Kube, ref: SessionRef, phase: Phase | None,
                 updates: list[ConditionUpdate], extra: dict[str, Any] | None = None
                 ) -> tuple[Phase | None, Phase | None]:
    """Merge conditions and fields into the status. Returns (previous phase, new phase)."""
    seen: dict[str, Phase | None] = {}

    def mutate(session: dict[str, Any]) -> dict[str, Any] | None:
        if session["metadata"]["uid"] != ref.uid:
            return None  # A new session of the same name: not ours to write.
        previous = _phase(session)
        seen["previous"] = previous
        if previous in TERMINAL_PHASES:
            seen["new"] = previous
            return None
        patch: dict[str, Any] = {
            "conditions": _conditions_patch(session, updates),
            "observedGeneration": session["metadata"].get("generation", 1),
        }
        if phase is not None:
            patch["phase"] = phase.value
        patch.update(extra or {})
        current = _status(session)
        if all(current.get(key) == value for key, value in patch.items()):
            seen["new"] = previous
            return None
        seen["new"] = phase or previous
        return patch

    kube.update_session_status(ref.namespace, ref.name, mutate)
    return seen.get("previous"), seen.get("new")


def sync_audit_labels(kube: Kube, session: dict[str, Any], spec: RecordingSessionSpec,
                      pods: bool = True) -> list[str]:
    """Make the session's (and, with `pods`, its pods') audit labels mirror spec.audit.

    Returns what changed on the session, e.g. ["lucid.dev/project=payroll",
    "lucid.dev/environment removed"]; an empty list when it was already in step.
    """
    ref = ref_of(session)
    wanted = builders.audit_labels(spec)
    patch = builders.label_patch(session["metadata"].get("labels") or {}, wanted)
    if patch:
        kube.patch_session_labels(ref.namespace, ref.name, ref.uid, patch)
    if pods:
        for pod in kube.list_pods(ref.namespace, f"{builders.LABEL_SESSION_UID}={ref.uid}"):
            meta = pod["metadata"]
            pod_patch = builders.label_patch(meta.get("labels") or {}, wanted)
            if pod_patch:
                kube.patch_pod_labels(ref.namespace, meta["name"], meta["uid"], pod_patch)
    return [f"{key}={value}" if value is not None else f"{key} removed"
            for key, value in patch.items()]


def update_audit_labels(kube: Kube, session: dict[str, Any]) -> list[Event]:
    """spec.audit was edited: bring the labels of the session and its pods in step."""
    changed = sync_audit_labels(kube, session, parse_spec(session))
    if not changed:
        return []
    return [Event("Normal", "AuditLabelsUpdated",
                  f"labels of the session and its recorder pods: {', '.join(changed)}")]


def start(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
          retry: int) -> list[Event]:
    """Create or resume a session: checks, per-session RBAC, the recorder pod."""
    ref = ref_of(session)
    if _phase(session) in TERMINAL_PHASES:
        return []
    spec = parse_spec(session)
    status = _status(session)
    # A new session has no pod yet (it is created labelled); a resumed one may have one.
    sync_audit_labels(kube, session, spec, pods=bool(status.get("podName")))
    if spec.state.value == "Stopped" or status.get("stopReason"):
        return _resume_stop(kube, settings, session)
    if status.get("nextRetryAt"):
        return []  # A replacement pod is due later; session_timer creates it.

    too_big = session_spool_problem(spec, settings.spool_size_limit)
    if too_big is not None:
        # Its recorder would fail on its first large chunk rather than wait: say so now.
        # Retried, so an edited spec or a restarted, reconfigured operator gets through.
        delay = retry_delay(retry, settings.retry_backoff_seconds,
                            settings.retry_backoff_max_seconds)
        message = f"{too_big} (retrying in {delay:g}s)"
        write_status(kube, ref, Phase.PENDING, [
            ConditionUpdate(READY, False, "SpoolTooSmall", message),
            config_degraded("SpoolTooSmall", too_big)])
        raise Retry(message, delay, [Event("Warning", "SpoolTooSmall", too_big)]
                    if retry == 0 else [])

    references = check_references(kube, ref.namespace, spec)
    reachable = check_reachable(spec.target.host, spec.target.port,
                                settings.reachability_timeout_seconds)
    failing = [c for c in (references, reachable) if c.status is not True]
    if failing:
        delay = retry_delay(retry, settings.retry_backoff_seconds,
                            settings.retry_backoff_max_seconds)
        message = "; ".join(c.message for c in failing) + f" (retrying in {delay:g}s)"
        write_status(kube, ref, Phase.PENDING, [
            references, reachable, ConditionUpdate(READY, False, failing[0].reason, message)])
        raise Retry(message, delay)
    issued: list[ConditionUpdate] = []
    events: list[Event] = []
    if settings.storage_scoped_credentials:
        credentials, what = ensure_session_credentials(kube, settings, session, ref, spec)
        if credentials.status is not True:
            delay = retry_delay(retry, settings.retry_backoff_seconds,
                                settings.retry_backoff_max_seconds)
            message = f"{credentials.message} (retrying in {delay:g}s)"
            write_status(kube, ref, Phase.PENDING, [
                references, reachable, credentials,
                ConditionUpdate(READY, False, credentials.reason, message)])
            raise Retry(message, delay, [Event("Warning", credentials.reason,
                                               credentials.message)] if retry == 0 else [])
        issued.append(credentials)
        if what:
            events.append(Event("Normal", f"StorageCredentials{what}", credentials.message))
    write_status(kube, ref, None, [
        references, reachable, *issued,
        *config_recovered(status.get("conditions") or [], ["SpoolTooSmall"])])
    return events + ensure_recorder(kube, settings, session, spec)


def renew_credentials(kube: Kube, settings: OperatorSettings, session: dict[str, Any]
                      ) -> list[Event]:
    """Keep a running session's scoped storage keys fresh (the timer calls this)."""
    status = _status(session)
    if not settings.storage_scoped_credentials or _phase(session) in TERMINAL_PHASES \
            or not status.get("podName"):
        return []
    ref = ref_of(session)
    credentials, what = ensure_session_credentials(kube, settings, session, ref,
                                                   parse_spec(session))
    write_status(kube, ref, None, [credentials])
    if credentials.status is not True:
        # The recorder's keys still work until they expire; the next tick tries again.
        return [Event("Warning", credentials.reason, credentials.message)]
    return [Event("Normal", f"StorageCredentials{what}", credentials.message)] if what else []


# Bad request, forbidden (quota, admission), invalid: retrying at once will not help.
POD_REFUSED_STATUSES = frozenset({400, 403, 422})


def _api_message(exc: ApiException) -> str:
    try:
        message = json.loads(exc.body or "{}").get("message")
    except ValueError:
        message = None
    return " ".join(str(message or exc.reason or exc.status).split())


def hand_over_resume_point(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
                           spec: RecordingSessionSpec, pod: str) -> list[Event]:
    """What the store holds of the session, in the ConfigMap the next pod starts from
    (scoped credentials: its keys cannot read the store). Taken once the previous pod has
    exited, so nothing is written meanwhile; kept when it exists (a re-run handler)."""
    ref = ref_of(session)
    root = session_root(spec.storage.key_prefix, ref.namespace, ref.name, ref.uid)
    try:
        point = resume_point.take(client_for(kube, ref.namespace, spec), spec.storage.bucket,
                                  root, ref.uid, _now())
        data = resume.encode(point)
    except (ResumePointError, SealStoreError) as exc:
        message = f"cannot tell recorder pod {pod} where to continue: {exc}"
        write_status(kube, ref, Phase.PENDING, [
            ConditionUpdate(READY, False, "ResumePointUnavailable", message)])
        raise Retry(message, settings.retry_backoff_seconds,
                    [Event("Warning", "ResumePointUnavailable", message)]) from exc
    kube.create_configmap(builders.resume_configmap(ref, pod, data))
    if point.empty:
        return []
    return [Event("Normal", "ResumePointHandedOver",
                  f"recorder pod {pod} continues after {len(point.chunk_seqs)} stored chunks")]


def ensure_recorder(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
                    spec: RecordingSessionSpec, replace: bool = False) -> list[Event]:
    """Create (or adopt) the session's recorder pod; with `replace`, the next one."""
    ref = ref_of(session)
    events: list[Event] = []
    for manifest in (builders.service_account(ref), builders.role(ref),
                     builders.role_binding(ref)):
        kube.ensure(manifest)
    current = _status(session).get("podName")
    index = pod_index(current) + 1 if replace and current else pod_index(current)
    attempt = attempt_of(session)
    name = pod_name(ref, index)
    resume_from = None
    if settings.storage_scoped_credentials:
        resume_from = builders.resume_configmap_name(name)
        if kube.read_pod(ref.namespace, name) is None:
            events = hand_over_resume_point(kube, settings, session, spec, name)
    manifest = builders.recorder_pod(ref, spec, settings, resume_from)
    manifest["metadata"]["name"] = name
    manifest["metadata"]["labels"][ATTEMPT_LABEL] = str(index)
    manifest["metadata"].setdefault("annotations", {})[RETRIES_ANNOTATION] = str(attempt)
    try:
        pod, created = kube.ensure(manifest)
    except ApiException as exc:
        if exc.status not in POD_REFUSED_STATUSES:
            raise
        # The spec passed the CRD, yet the pod it makes does not pass the apiserver
        # (the operator's default limits, a LimitRange, a quota): say so on the session.
        delay = settings.retry_backoff_max_seconds
        message = (f"the apiserver refused recorder pod {manifest['metadata']['name']}: "
                   f"{_api_message(exc)} (retrying in {delay:g}s)")
        # A configuration error no retry gets past by itself: Degraded, not just Pending
        # (the Argo CD health check reads it), while a retry still picks up a fix.
        write_status(kube, ref, Phase.PENDING, [
            ConditionUpdate(READY, False, "PodRejected", message),
            config_degraded("PodRejected", message)])
        raise Retry(message, delay, [Event("Warning", "PodRejected", message)]) from None
    extra = {"podName": pod["metadata"]["name"], "nextRetryAt": None}
    view = PodView.from_pod(pod)
    phase, updates = derive_phase(_observation(session, view))
    updates += config_recovered(_status(session).get("conditions") or [], ["PodRejected"])
    write_status(kube, ref, phase, updates, extra)
    if created:
        replacing = f", replacing {current}" if replace and current else ""
        return [*events, Event("Normal", "RecorderCreated",
                               f"created recorder pod {pod['metadata']['name']}{replacing} "
                               f"(retries so far: {attempt})")]
    return [*events, Event("Normal", "RecorderAdopted",
                           f"adopted existing recorder pod {pod['metadata']['name']}")]


def _observation(session: dict[str, Any], pod: PodView | None, deleted: bool = False
                 ) -> Observation:
    status = _status(session)
    pipeline = status.get("pipeline") or {}
    capturing = pipeline.get("state") == contract.PIPELINE_CAPTURING
    incomplete = pipeline.get("state") == contract.PIPELINE_INCOMPLETE
    return Observation(
        desired_state=(session.get("spec") or {}).get("state", "Recording"),
        deleting=bool(session["metadata"].get("deletionTimestamp")),
        previous_phase=_phase(session),
        pod=None if deleted else pod,
        pod_gone_after_start=deleted,
        recorder_capturing=capturing,
        stop_reason=status.get("stopReason") or "",
        screen=(pipeline.get("screen") or "") if capturing else "",
        pipeline_message=pipeline.get("message") or "",
        incomplete=(pipeline.get("message") or "recording incomplete") if incomplete else "",
        pod_name=pod.name if pod is not None else status.get("podName") or "",
    )


def _resume_stop(kube: Kube, settings: OperatorSettings, session: dict[str, Any]
                 ) -> list[Event]:
    """A stop that began before (an operator restart in between): finish it, never restart."""
    ref = ref_of(session)
    name = _status(session).get("podName")
    pod = kube.read_pod(ref.namespace, name) if name else None
    if pod is not None and pod["metadata"].get("deletionTimestamp"):
        return []  # Still terminating: its pod events finish the story.
    reason = _status(session).get("stopReason") or "StoppedBySpec"
    return stop(kube, settings, session, reason)


def _finished(pod: dict[str, Any] | None) -> bool:
    """No container of the pod runs any more (or there is no pod)."""
    return pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def stop(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
         reason: str) -> list[Event]:
    """Stop gracefully: the pod gets SIGTERM and its grace period to flush.

    The reason is written before the pod is signalled: the recorder reads it to tell a
    stop (finalize the recording) from a lost pod (leave it open for the next pod).
    """
    ref = ref_of(session)
    if _phase(session) in TERMINAL_PHASES:
        return []
    name = _status(session).get("podName")
    extra: dict[str, Any] = {"stopReason": reason, "nextRetryAt": None}
    pod = kube.read_pod(ref.namespace, name) if name else None
    if _finished(pod):
        # No recorder runs (none started yet, or a replacement was still due): nothing
        # to flush, the recording is over.
        how = ("stopped before a recorder was started" if not name
               else f"no recorder pod runs any more (last: {name})")
        extra["stoppedAt"] = rfc3339(_now())
        write_status(kube, ref, Phase.COMPLETED, completed_updates(reason, how), extra)
        return [Event("Normal", "Completed", f"{how} ({reason})")]
    write_status(kube, ref, Phase.STOPPING, [
        ConditionUpdate(READY, False, "Stopping", f"{reason}: waiting for the recorder to flush")],
        extra)
    kube.delete_pod(ref.namespace, name, settings.termination_grace_seconds)
    return [Event("Normal", "Stopping", f"{reason}: sent SIGTERM to recorder pod {name}")]


def finalize(kube: Kube, settings: OperatorSettings, session: dict[str, Any]) -> list[Event]:
    """On delete: let the recorder flush, but never block deletion past the timeout."""
    ref = ref_of(session)
    name = _status(session).get("podName")
    pod = kube.read_pod(ref.namespace, name) if name else None
    if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        # The session is about to go: this is the last chance to say what was lost.
        latest = kube.read_session(ref.namespace, ref.name) or session
        return last_words(latest, pod) if name else []
    deleted_at = dt.datetime.fromisoformat(
        session["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
    waited = (_now() - deleted_at).total_seconds()
    if waited > settings.delete_timeout_seconds:
        kube.delete_pod(ref.namespace, name, 0)
        return [Event("Warning", "DeleteTimeout",
                      f"recorder pod {name} did not finish within "
                      f"{settings.delete_timeout_seconds}s; removed it without waiting")]
    events: list[Event] = []
    if not pod["metadata"].get("deletionTimestamp"):
        events = stop(kube, settings, session, "SessionDeleted")
    raise Retry(f"waiting for recorder pod {name} to flush ({waited:.0f}s so far)", 2.0, events)


def last_words(session: dict[str, Any], pod: dict[str, Any] | None) -> list[Event]:
    """A deleted session's recorder is done: a Warning if it did not store everything.

    Its own report (status.pipeline, state Incomplete: the chunk numbers not uploaded)
    comes first; else a pod killed or failed before it finalized; else silence, when
    the recorder reported its final manifest.
    """
    pipeline = _status(session).get("pipeline") or {}
    name = _status(session).get("podName") or "?"
    state = pipeline.get("state")
    ready = next((c for c in _status(session).get("conditions") or []
                  if c.get("type") == READY), {})
    if ready.get("reason") == CHUNKS_NOT_UPLOADED:
        return []  # observe_pod announced it when the pod failed
    if state == contract.PIPELINE_INCOMPLETE:
        return [Event("Warning", CHUNKS_NOT_UPLOADED,
                      f"recorder pod {name} stopped before storage took everything: "
                      f"{pipeline.get('message') or 'no message'}")]
    if state == contract.PIPELINE_FINALIZED:
        return []
    view = PodView.from_pod(pod) if pod is not None else None
    if view is not None and view.exit_code not in (None, 0):
        words = (view.message or "").strip().splitlines()
        return [Event("Warning", "RecordingIncomplete",
                      f"recorder pod {name} ended with exit code {view.exit_code} before it "
                      "wrote its final manifest; chunks still in its spool are lost"
                      + (f"; its last words: {words[-1][:512]}" if words else ""))]
    return [Event("Warning", "RecordingIncomplete",
                  f"recorder pod {name} is gone and never reported its final manifest; "
                  f"{pipeline.get('chunksStored', 0)} chunks were stored "
                  "(lucid-seal verify shows what is missing)")]


def observe_pod(kube: Kube, settings: OperatorSettings, pod: dict[str, Any],
                deleted: bool) -> list[Event]:
    """Project the recorder pod's state into its session's status."""
    labels = pod["metadata"].get("labels") or {}
    namespace = pod["metadata"]["namespace"]
    session = kube.read_session(namespace, labels.get(builders.LABEL_SESSION, ""))
    if session is None or session["metadata"]["uid"] != labels.get(builders.LABEL_SESSION_UID):
        return []
    ref = ref_of(session)
    status = _status(session)
    # The current pod, even before start() recorded its name (its events can overtake
    # that write); an earlier pod's story is told.
    current = status.get("podName") or pod_name(ref, 0)
    if pod["metadata"]["name"] != current:
        return []
    if status.get("nextRetryAt"):
        return []  # This pod's end is already handled: a replacement is due.
    view = PodView.from_pod(pod)
    obs = _observation(session, view, deleted)
    phase, updates = derive_phase(obs)
    extra: dict[str, Any] = {}
    if phase in (Phase.CONNECTING, Phase.RECORDING) and not status.get("startedAt"):
        extra["startedAt"] = rfc3339(_now())
    events: list[Event] = []
    spec = parse_spec(session)
    before = _retries_before(pod)
    if view.failures and before + view.restarts > attempt_of(session):
        extra["retries"] = before + view.restarts
    if before + view.failures > spec.retry.max_retries and phase not in TERMINAL_PHASES:
        return _give_up(kube, settings, session, view, before, spec.retry.max_retries)
    if pod_lost(obs):
        return _replace_lost(kube, session, spec, obs, before + view.restarts)
    if phase is Phase.FAILED:
        attempt = max(attempt_of(session), before + view.restarts)
        if attempt < spec.retry.max_retries and status.get("phase") != Phase.STOPPING.value:
            delay = retry_delay(attempt, spec.retry.backoff_seconds, spec.retry.max_backoff_seconds)
            retry_at = _now() + dt.timedelta(seconds=delay)
            message = next(u.message for u in updates if u.type == RECORDER_RUNNING)
            write_status(kube, ref, Phase.PENDING, [
                *[u for u in updates if u.type == RECORDER_RUNNING],
                ConditionUpdate(READY, False, "RetryScheduled",
                                f"{message}; replacement {attempt + 1}/{spec.retry.max_retries} "
                                f"at {rfc3339(retry_at)}")],
                {"retries": attempt + 1, "nextRetryAt": rfc3339(retry_at)})
            return [Event("Warning", "RecorderFailed",
                          f"{message}; retrying in {delay:g}s "
                          f"({attempt + 1}/{spec.retry.max_retries})")]
    if phase in TERMINAL_PHASES:
        extra["stoppedAt"] = rfc3339(_now())
    if phase is Phase.COMPLETED and not status.get("stopReason"):
        extra["stopReason"] = stop_reason_of(obs)
    previous, new = write_status(kube, ref, phase, updates, extra)
    # stop() announces Stopping itself, with the reason.
    if new != previous and new is not None and new is not Phase.STOPPING:
        ready = next((u for u in updates if u.type == READY), None)
        warn = new is Phase.FAILED or (ready is not None and ready.reason == RECORDER_LOST)
        message = ready.message if ready is not None else new.value
        # Lost pods and chunks lost at a stop are announced by that name, once (see
        # last_words).
        reason = (ready.reason if ready is not None
                  and ready.reason in (RECORDER_LOST, CHUNKS_NOT_UPLOADED) else new.value)
        events.append(Event("Warning" if warn else "Normal", reason, message))
    return events


def _replace_lost(kube: Kube, session: dict[str, Any], spec: RecordingSessionSpec,
                  obs: Observation, retries_so_far: int) -> list[Event]:
    """The pod ended while the spec says Recording: a new pod continues the recording
    (the recorder stored what it had; verify shows the declared gap), or, past
    retry.maxRetries, the session fails saying so. Never Completed."""
    ref = ref_of(session)
    what = lost_message(obs)
    count = max(attempt_of(session), retries_so_far) + 1
    max_retries = spec.retry.max_retries
    if count > max_retries:
        message = (f"{what}; no replacement left: {count} recorder pods failed or were lost, "
                   f"retry.maxRetries is {max_retries}")
        write_status(kube, ref, Phase.FAILED, failed_updates("PodLost", RECORDER_LOST, message),
                     {"stoppedAt": rfc3339(_now())})
        return [Event("Warning", RECORDER_LOST, what), Event("Warning", "Failed", message)]
    delay = retry_delay(count - 1, spec.retry.backoff_seconds, spec.retry.max_backoff_seconds)
    retry_at = _now() + dt.timedelta(seconds=delay)
    message = (f"{what}; replacement {count}/{max_retries} at {rfc3339(retry_at)} continues "
               "the recording after a declared gap")
    write_status(kube, ref, Phase.PENDING, [
        ConditionUpdate(RECORDER_RUNNING, False, "PodLost", what),
        ConditionUpdate(READY, False, RECORDER_LOST, message)],
        {"retries": count, "nextRetryAt": rfc3339(retry_at)})
    return [Event("Warning", RECORDER_LOST, message)]


def needs_refresh(session: dict[str, Any]) -> bool:
    """The recorder reported progress or a problem that the phase or conditions lack."""
    status = _status(session)
    pipeline = status.get("pipeline") or {}
    if _phase(session) in TERMINAL_PHASES:
        return False
    # Pending too: the pod's first events may have been seen before its name was recorded.
    capturing = (_phase(session) in (Phase.PENDING, Phase.CONNECTING)
                 and pipeline.get("state") == contract.PIPELINE_CAPTURING)
    gave_up = pipeline.get("state") == contract.PIPELINE_FAILED
    if pipeline.get("state") == contract.PIPELINE_INCOMPLETE:
        return False  # the pod's failure tells it (observe_pod, last_words)
    return (capturing or gave_up or _ready_stale(session)
            or degraded_update(pipeline, status.get("conditions") or []) is not None)


def _ready_stale(session: dict[str, Any]) -> bool:
    """Recording, but Ready says other than the recorder's screen report calls for."""
    status = _status(session)
    pipeline = status.get("pipeline") or {}
    if _phase(session) is not Phase.RECORDING or \
            pipeline.get("state") != contract.PIPELINE_CAPTURING:
        return False
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == READY), {})
    return ready.get("reason") != ready_reason(pipeline)


def refresh(kube: Kube, settings: OperatorSettings, session: dict[str, Any]) -> list[Event]:
    """Re-derive phase and Degraded after the recorder reported something."""
    status = _status(session)
    pipeline = status.get("pipeline") or {}
    if pipeline.get("state") == contract.PIPELINE_FAILED:
        return _recorder_gave_up(kube, settings, session, pipeline.get("message") or "no message")
    events: list[Event] = []
    # A recorder's last words (chunks not uploaded) end the session; they are no
    # degradation to announce, but the pod's failure is (observe_pod, last_words).
    degraded = None if pipeline.get("state") == contract.PIPELINE_INCOMPLETE else \
        degraded_update(pipeline, status.get("conditions") or [])
    if degraded is not None:
        write_status(kube, ref_of(session), None, [degraded])
        current = next((c for c in status.get("conditions") or []
                        if c.get("type") == degraded.type), {})
        # The condition follows every new message (a retry count, a countdown); an Event
        # only marks a change of state or reason, so an outage is not a stream of Events.
        if (current.get("status") != degraded.status_text
                or current.get("reason") != degraded.reason):
            reason = ((NO_SCREEN_UPDATES if degraded.reason == NO_SCREEN_UPDATES
                       else "Degraded") if degraded.status else "Recovered")
            events.append(Event("Warning" if degraded.status else "Normal", reason,
                                degraded.message))
    name = status.get("podName")
    pod = kube.read_pod(session["metadata"]["namespace"], name) if name else None
    if pod is not None:
        events += observe_pod(kube, settings, pod, deleted=False)
    return events


def _recorder_gave_up(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
                      message: str) -> list[Event]:
    """The recorder hit an error a restart cannot fix (bad credentials, a malformed
    key, a missing bucket): fail now instead of crash-looping through the retries.

    The pod still gets its grace period: a recorder that failed may have chunks to
    flush and a manifest to finalize. The Event is posted by whichever handler made
    the transition, once.
    """
    ref = ref_of(session)
    text = f"recorder cannot continue: {message}"
    previous, new = write_status(kube, ref, Phase.FAILED,
                                 failed_updates("RecorderFailed", "RecorderFailed", text),
                                 {"stoppedAt": rfc3339(_now())})
    name = _status(session).get("podName")
    if name:
        kube.delete_pod(ref.namespace, name, settings.termination_grace_seconds)
    return [Event("Warning", "Failed", text)] if _became_failed(previous, new) else []


def _became_failed(previous: Phase | None, new: Phase | None) -> bool:
    return previous not in TERMINAL_PHASES and new is Phase.FAILED


def _give_up(kube: Kube, settings: OperatorSettings, session: dict[str, Any], pod: PodView,
             before: int, max_retries: int) -> list[Event]:
    """The recorder kept failing: stop restarting it and say why, with its last words."""
    ref = ref_of(session)
    message = (f"recorder failed {before + pod.failures} times (retry.maxRetries "
               f"{max_retries}); last exit code {pod.exit_code}")
    if pod.message:
        message += f": {pod.message}"
    previous, new = write_status(kube, ref, Phase.FAILED,
                                 failed_updates("RecorderFailed", "RecorderFailed", message),
                                 # A restart the kubelet had scheduled but that never ran
                                 # is not a retry.
                                 {"retries": min(before + pod.restarts, max_retries),
                                  "stoppedAt": rfc3339(_now())})
    # Its grace period, like any stop: a run in progress flushes what it has.
    kube.delete_pod(ref.namespace, pod.name, settings.termination_grace_seconds)
    if not _became_failed(previous, new):
        return []
    return [Event("Warning", "RecorderFailed", message), Event("Warning", "Failed", message)]


def tick(kube: Kube, settings: OperatorSettings, session: dict[str, Any]) -> list[Event]:
    """Time-driven work: replacement pods whose backoff ran out, and the max duration."""
    if _phase(session) in TERMINAL_PHASES:
        return []
    status = _status(session)
    spec = parse_spec(session)
    now = _now()
    retry_at = status.get("nextRetryAt")
    if retry_at and dt.datetime.fromisoformat(retry_at.replace("Z", "+00:00")) <= now:
        if contract.stop_intended(session):
            return stop(kube, settings, session, status.get("stopReason") or "StoppedBySpec")
        ref = ref_of(session)
        old_name = status.get("podName")
        old = kube.read_pod(ref.namespace, old_name) if old_name else None
        if not _finished(old):
            # Two recorders must never write one recording at once: the new pod starts
            # once the old one has stored what it had and exited.
            if old is not None and not old["metadata"].get("deletionTimestamp"):
                # A replacement decided before an operator restart, not carried out yet.
                kube.delete_pod(ref.namespace, old_name, settings.termination_grace_seconds)
            return []
        return ensure_recorder(kube, settings, session, spec, replace=bool(old_name))
    started = status.get("startedAt")
    if (spec.max_duration_seconds and started and status.get("phase") in
            (Phase.CONNECTING.value, Phase.RECORDING.value)):
        began = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
        if (now - began).total_seconds() >= spec.max_duration_seconds:
            return stop(kube, settings, session, "MaxDurationReached")
    return []


def needs_tick(session: dict[str, Any]) -> bool:
    status = _status(session)
    if status.get("phase") in {p.value for p in TERMINAL_PHASES}:
        return False
    spec = session.get("spec") or {}
    return bool(status.get("nextRetryAt")) or bool(spec.get("maxDurationSeconds"))


def apply_spec_change(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
                      changed: set[str]) -> list[Event]:
    """The spec was edited: apply what can be, replace the recorder for what it reads at
    start, and say which; observedGeneration catches up either way."""
    ref = ref_of(session)
    generation = session["metadata"].get("generation", 1)
    restart = [f for f in RESTART_FIELDS if f in changed]
    live = [f for f in LIVE_FIELDS if f in changed]
    named = ", ".join(f"spec.{f}" for f in (*restart, *live))
    if _phase(session) in TERMINAL_PHASES:
        _catch_up_generation(kube, ref)
        if not named:
            return []
        return [Event("Normal", "SpecNotApplied",
                      f"{named} changed (generation {generation}), but the session is "
                      f"{_phase(session)}: nothing records any more")]
    events: list[Event] = []
    if live:
        events.append(Event("Normal", "SpecApplied",
                            f"{', '.join(f'spec.{f}' for f in live)} applied "
                            f"(generation {generation})"))
    if not restart:
        write_status(kube, ref, None, [])
        return events
    fields = ", ".join(f"spec.{f}" for f in restart)
    status = _status(session)
    name = status.get("podName")
    pod = kube.read_pod(ref.namespace, name) if name else None
    if contract.stop_intended(session):
        write_status(kube, ref, None, [])
        return [*events, Event("Normal", "SpecNotApplied",
                               f"{fields} changed (generation {generation}), but the "
                               "recording is stopping")]
    if pod is None or _finished(pod) or pod["metadata"].get("deletionTimestamp") \
            or status.get("nextRetryAt"):
        write_status(kube, ref, None, [])
        return [*events, Event("Normal", "SpecApplied",
                               f"{fields} changed (generation {generation}): applies to the "
                               "next recorder pod")]
    message = (f"{fields} changed (generation {generation}): replacing recorder pod {name}; "
               "the recording continues in a new pod after a declared gap")
    # The replacement is due at once; tick() starts it when the old pod has flushed.
    write_status(kube, ref, Phase.PENDING, [ConditionUpdate(READY, False, "Reconfiguring",
                                                            message)],
                 {"nextRetryAt": rfc3339(_now())})
    kube.delete_pod(ref.namespace, name, settings.termination_grace_seconds)
    return [*events, Event("Normal", "Reconfiguring", message)]


def _catch_up_generation(kube: Kube, ref: SessionRef) -> None:
    """observedGeneration of an ended session: its status is otherwise left as it ended."""

    def mutate(session: dict[str, Any]) -> dict[str, Any] | None:
        if session["metadata"]["uid"] != ref.uid:
            return None
        generation = session["metadata"].get("generation", 1)
        if _status(session).get("observedGeneration") == generation:
            return None
        return {"observedGeneration": generation}

    kube.update_session_status(ref.namespace, ref.name, mutate)


# -- evidence: the operator's seals (evidence.py decides, this writes) ------------------


def needs_seal(session: dict[str, Any], settings: OperatorSettings) -> bool:
    return evidence.due(session, _now(), settings.seal_checkpoint_seconds) is not None


def seal_recording(kube: Kube, settings: OperatorSettings, signer: Ed25519PrivateKey,
                   session: dict[str, Any]) -> list[Event]:
    """Countersign what the session's status shows, into the status, then the bucket.

    The status is written first and conditionally (resourceVersion): it is the anchor,
    and a concurrent recorder report makes the seal be recomputed, never lost. Then the
    same seal goes into the bucket; a failure there is kept in evidence.message and
    retried on the next event, without a new seal.
    """
    ref = ref_of(session)
    interval = settings.seal_checkpoint_seconds
    decision = evidence.due(session, _now(), interval)
    if decision is None:
        return []
    events: list[Event] = []
    made: dict[str, Any] = {}

    def mutate(fresh: dict[str, Any]) -> dict[str, Any] | None:
        if fresh["metadata"]["uid"] != ref.uid:
            return None
        now = _now()
        if evidence.due(fresh, now, interval) != evidence.SEAL:
            return None
        unsigned, seen = evidence.next_seal(fresh, now)
        made["seal"], made["facts"] = sign_seal(unsigned, signer), seen
        made["evidence"] = (_status(fresh).get("evidence") or {})
        return {"evidence": {"seal": made["seal"].to_k8s()}}

    if decision == evidence.SEAL:
        kube.update_session_status(ref.namespace, ref.name, mutate)
        seal: Seal | None = made.get("seal")
        if seal is None:
            return []
        seen: evidence.Facts = made["facts"]
        if seen.conflict:
            events.append(Event("Warning", "EvidenceConflict", seen.conflict))
        if seal.final:
            events.append(Event("Normal", "Sealed", (
                f"operator seal #{seal.counter}: {seal.state}, {seal.chunks} chunks"
                + (f", chain head {seal.chain_head[:16]}" if seal.chain_head else "")
                + f", {len(seal.signing_keys)} recorder run key(s)")))
        message = made["evidence"].get("message")
    else:
        seal = evidence.current_seal(session)
        message = (_status(session).get("evidence") or {}).get("message")
        if seal is None:
            return []
    return events + _store_seal(kube, session, seal, message)


def _store_seal(kube: Kube, session: dict[str, Any], seal: Seal, message: str | None
                ) -> list[Event]:
    ref = ref_of(session)
    if evidence.seal_stays_in_status(seal):
        problem = None
    else:
        try:
            put_seal(kube, ref.namespace, parse_spec(session), seal)
            problem = None
        except SealStoreError as exc:
            problem = f"seal #{seal.counter} is in the status but not in the bucket: {exc}"
    if problem == message:
        return []

    def mutate(fresh: dict[str, Any]) -> dict[str, Any] | None:
        if fresh["metadata"]["uid"] != ref.uid:
            return None
        current = (_status(fresh).get("evidence") or {}).get("message")
        return None if current == problem else {"evidence": {"message": problem}}

    kube.update_session_status(ref.namespace, ref.name, mutate)
    return [Event("Warning", "SealNotStored", problem)] if problem else []
