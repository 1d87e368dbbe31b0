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
ERRORS = Counter("lucid_recorder_errors_total",
                 "Failed operations, by stage, including those that are retried.", ["stage"])
SPOOL_BYTES = Gauge("lucid_recorder_spool_bytes", "Bytes of sealed chunks waiting in the spool.")
CHUNKS_STORED = Counter("lucid_recorder_chunks_stored_total", "Chunks acknowledged by storage.")
UPLOAD_LAG = Gauge("lucid_recorder_upload_lag_seconds",
                   "Age of the oldest recorded data not yet stored, in seconds "
                   "(status.pipeline.uploadLagSeconds); 0 when everything is stored.")
RDP_CONNECTED = Gauge("lucid_recorder_rdp_connected",
                      "1 while the recorder is connected to the RDP target, else 0.")
SCREEN_SHOWN = Gauge("lucid_recorder_screen_shown",
                     "1 once the remote session's screen arrived on the current connection "
                     "(the NoScreenUpdates rule), else 0.")

# Every label value is exported from the start, at 0: a dashboard's rate() and an alert on
# "errors > 0" then see the first error as a change, not as a series that appears.
ERROR_STAGES = ("capture", "compress", "encrypt", "store")
RETRY_OPERATIONS = ("upload", "manifest", "rdp_connect", "storage_credentials")
for _stage in ERROR_STAGES:
    ERRORS.labels(_stage)
for _operation in RETRY_OPERATIONS:
    RETRIES.labels(_operation)
