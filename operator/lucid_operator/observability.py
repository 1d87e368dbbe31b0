"""Prometheus metrics and log formatting of the operator."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

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


class JsonFormatter(logging.Formatter):
    """One JSON object per line; kopf's per-object context rides along when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            entry["object"] = {k: ref.get(k) for k in ("kind", "namespace", "name")}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kubernetes client logs request bodies at DEBUG, which may include Secrets.
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
