"""The recorder's Prometheus metrics (served on /metrics beside /healthz)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPDATES = Counter("lucid_recorder_updates_total", "Screen updates (capture events) received.")
RECTANGLES = Counter("lucid_recorder_rectangles_total", "Pixel rectangles captured.")
STAGE_BYTES = Counter("lucid_recorder_stage_bytes_total", "Bytes out of each pipeline stage.",
                      ["stage"])
QUEUE_DEPTH = Gauge("lucid_recorder_queue_depth", "Items waiting before each stage.", ["stage"])
UPLOAD_SECONDS = Histogram("lucid_recorder_upload_seconds", "Latency of one chunk upload.",
                           buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
RETRIES = Counter("lucid_recorder_retries_total", "Retried operations, by what was retried.",
                  ["operation"])
ERRORS = Counter("lucid_recorder_errors_total", "Errors, by stage.", ["stage"])
SPOOL_BYTES = Gauge("lucid_recorder_spool_bytes", "Bytes of sealed chunks waiting in the spool.")
CHUNKS_STORED = Counter("lucid_recorder_chunks_stored_total", "Chunks acknowledged by storage.")
