"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from lucid_common.api import Phase

RECONCILES = Counter("lucid_operator_reconciles_total",
                     "Handler runs, by handler and outcome.", ["handler", "outcome"])
ERRORS = Counter("lucid_operator_errors_total", "Handler runs that raised, by handler.",
                 ["handler"])
SESSIONS = Gauge("lucid_operator_sessions", "RecordingSessions by phase, as last seen.",
                 ["phase"])

# Every label value is exported from the start, at 0, so a dashboard's rate() and an alert
# on errors see the first error or retry as a change rather than as a new series.
HANDLERS = ("start", "stop", "finalize", "timer", "refresh")
OUTCOMES = ("ok", "retry", "invalid")
for _handler in HANDLERS:
    ERRORS.labels(_handler)
    for _outcome in OUTCOMES:
        RECONCILES.labels(_handler, _outcome)
for _phase in Phase:
    SESSIONS.labels(_phase.value)

_phases_by_uid: dict[str, str] = {}


def observe_phase(uid: str, phase: str | None) -> None:
    """Keep the by-phase gauge in step with the last phase seen for each session."""
    previous = _phases_by_uid.pop(uid, None)
    if previous is not None:
        SESSIONS.labels(previous).dec()
    if phase is not None:
        _phases_by_uid[uid] = phase
        SESSIONS.labels(phase).inc()
