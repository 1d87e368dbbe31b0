"""Log formatting shared by the operator and the recorder: JSON lines or plain text."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


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


class PlannedRetryFilter(logging.Filter):
    """kopf logs every TemporaryError at ERROR, and posts it as an Error Event.

    The operator raises one for retries it plans and reports itself (a missing Secret, a
    recorder still flushing on delete: once per deleted session), with its own condition
    and Event. Those lines are news, not errors: INFO, which also keeps them out of the
    session's Events (posting starts at WARNING). Retries that give up stay ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and " failed temporarily: " in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


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
    # One line per health probe would drown everything else.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # kopf's per-object logger: its records reach both the log and kopf's Event poster.
    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, PlannedRetryFilter) for f in kopf_objects.filters):
        kopf_objects.addFilter(PlannedRetryFilter())
