"""kopf handlers: thin glue from kopf's callbacks to reconcile.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf

from lucid_common.api import GROUP, KIND, PLURAL, VERSION
from lucid_operator import reconcile
from lucid_operator.builders import MANAGED_BY
from lucid_operator.kube import Kube
from lucid_operator.observability import ERRORS, RECONCILES, observe_phase
from lucid_operator.settings import OperatorSettings

RESOURCE = (GROUP, VERSION, PLURAL)


def _run(name: str, body: kopf.Body, memo: kopf.Memo,
         action: Callable[[Kube, OperatorSettings], list[reconcile.Event]]) -> None:
    """Run one decision, post its Events, count it; Retry becomes kopf's TemporaryError."""
    try:
        events = action(memo.kube, memo.settings)
    except reconcile.Retry as retry:
        RECONCILES.labels(name, "retry").inc()
        _post(body, retry.events)
        raise kopf.TemporaryError(str(retry), delay=retry.delay) from None
    except reconcile.InvalidSpec as exc:
        RECONCILES.labels(name, "invalid").inc()
        kopf.event(body, type="Warning", reason="InvalidSpec", message=str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    except Exception:
        ERRORS.labels(name).inc()
        raise
    RECONCILES.labels(name, "ok").inc()
    _post(body, events)


def _post(body: kopf.Body, events: list[reconcile.Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _session(body: kopf.Body) -> dict[str, Any]:
    return dict(body)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
def start_session(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    _run("start", body, memo,
         lambda kube, settings: reconcile.start(kube, settings, _session(body), retry))


@kopf.on.field(*RESOURCE, field="spec.state", value="Stopped")
def stop_session(body: kopf.Body, memo: kopf.Memo, old: Any, **_: Any) -> None:
    if old is None:
        return  # Created as Stopped: start_session handles that.
    _run("stop", body, memo,
         lambda kube, settings: reconcile.stop(kube, settings, _session(body), "StoppedBySpec"))


@kopf.on.field(*RESOURCE, field="spec.audit")
def audit_changed(body: kopf.Body, memo: kopf.Memo, reason: kopf.Reason, **_: Any) -> None:
    if reason == kopf.Reason.CREATE:
        return  # start_session labels a new session, and its pod is created labelled.
    _run("labels", body, memo,
         lambda kube, settings: reconcile.update_audit_labels(kube, _session(body)))


@kopf.on.update(*RESOURCE, field="spec")
def spec_changed(body: kopf.Body, memo: kopf.Memo, diff: kopf.Diff, **_: Any) -> None:
    # With field="spec", kopf gives the diff's paths relative to the spec.
    changed = {str(path[0]) for _op, path, _old, _new in diff if path}
    _run("spec", body, memo, lambda kube, settings: reconcile.apply_spec_change(
        kube, settings, _session(body), changed))


# Only a session that still records needs the finalizer: kopf removes it once the session
# is Completed or Failed, so deleting an ended session never waits for an operator (one
# left behind by `helm uninstall` goes at once).
@kopf.on.delete(*RESOURCE, when=lambda body, **_: not reconcile.is_terminal(dict(body)))
def finalize_session(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _run("finalize", body, memo,
         lambda kube, settings: reconcile.finalize(kube, settings, _session(body)))
    observe_phase(body.metadata.uid or "", None)


@kopf.timer(*RESOURCE, interval=2.0, initial_delay=1.0,
            when=lambda body, **_: reconcile.needs_tick(dict(body)))
def session_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _run("timer", body, memo,
         lambda kube, settings: reconcile.tick(kube, settings, _session(body)))


# Scoped storage keys are renewed with a third of their life left (at least 5 minutes):
# a check every 30 s is far inside that.
@kopf.timer(*RESOURCE, interval=30.0, initial_delay=30.0,
            when=lambda body, memo, **_: memo.settings.storage_scoped_credentials
            and not reconcile.is_terminal(dict(body)))
def credentials_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _run("credentials", body, memo,
         lambda kube, settings: reconcile.renew_credentials(kube, settings, _session(body)))


@kopf.on.event(*RESOURCE)
def track_phase(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    phase = None if type == "DELETED" else (body.get("status") or {}).get("phase")
    observe_phase(body.metadata.uid or "", phase)
    # kopf diffs only spec and metadata, so the recorder's status reports
    # arrive here, as plain events.
    if type != "DELETED" and reconcile.needs_refresh(_session(body)):
        _run("refresh", body, memo,
             lambda kube, settings: reconcile.refresh(kube, settings, _session(body)))
    if type != "DELETED" and reconcile.needs_seal(_session(body), memo.settings):
        _run("seal", body, memo, lambda kube, settings: reconcile.seal_recording(
            kube, settings, memo.signer, _session(body)))


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def recorder_pod_event(body: kopf.Body, type: str | None, memo: kopf.Memo,
                       logger: logging.Logger, **_: Any) -> None:
    if type is None:
        return  # Initial listing: the session handlers reconcile those on resume.
    events = reconcile.observe_pod(memo.kube, memo.settings, dict(body), type == "DELETED")
    owner = next((ref for ref in body.metadata.get("ownerReferences", [])
                  if ref.get("kind") == KIND and ref.get("controller")), None)
    if events and owner is not None:
        # The ownerReference names the session: enough to address its Events.
        session = {"apiVersion": owner["apiVersion"], "kind": KIND,
                   "metadata": {"namespace": body.metadata.namespace, "name": owner["name"],
                                "uid": owner["uid"]}}
        for event in events:
            kopf.event(session, type=event.type, reason=event.reason,  # type: ignore[arg-type]
                       message=event.message)
        logger.info("session %s: %s", owner["name"], ", ".join(e.reason for e in events))
