"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECONCILES = Counter("lucid_operator_reconciles_total",
                     "Handler runs, by handler and outcome.", ["handler", "outcome"])
ERRORS = Counter("lucid_operator_errors_total", "Handler runs that raised, by handler.",
                 ["handler"])
SESSIONS = Gauge("lucid_operator_sessions", "RecordingSessions by phase, as last seen.",
                 ["phase"])

_phases_by_uid: dict[str, str] = {}


def observe_phase(uid: str, phase: str | None) -> None:
    """Keep the by-phase gauge in step with the last phase seen for each session."""
    previous = _phases_by_uid.pop(uid, None)
    if previous is not None:
        SESSIONS.labels(previous).dec()
    if phase is not None:
        _phases_by_uid[uid] = phase
        SESSIONS.labels(phase).inc()
