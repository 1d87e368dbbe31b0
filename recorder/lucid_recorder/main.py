"""`lucid-recorder`: the recorder pod's program.

It reads what the operator put in the pod (contract.py), resumes from its
spool, records until SIGTERM or the end of the session, and exits 0 only
once the final manifest is stored. A failure exits non-zero with one line on
stderr, which the pod's FallbackToLogsOnError turns into the session's
condition message: 2 invalid settings or spec (or no API address or service
account token in the pod), 3 unusable key, bucket or credentials at start,
4 capture failed (after finalizing what was captured), 5 storage failed,
6 stopped with chunks storage never took (ChunksNotUploaded).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import urllib3
from prometheus_client import start_http_server
from pydantic import ValidationError

from lucid_common import contract
from lucid_common.api import GROUP, PLURAL, VERSION, RecordingSessionSpec
from lucid_common.logs import configure_logging
from lucid_recorder import allocator, native
from lucid_recorder.kube import InClusterClient, KubeApiError, KubeConfigError
from lucid_recorder.pipeline.recording import Recording
from lucid_recorder.rdp.capture import capture_with_reconnect
from lucid_recorder.rdp.errors import CaptureError
from lucid_recorder.sealing.errors import SealingError
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.settings import RecorderSettings
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import ChunksNotUploaded, Spool, StorageError, resume
from lucid_recorder.storage.credentials import MountedCredentials
from lucid_recorder.storage.from_spec import object_store, recipient_key
from lucid_recorder.storage.recovery import HandedOver
from lucid_recorder.target import capture_config

log = logging.getLogger("lucid.recorder")


def _status_patcher(api: InClusterClient, settings: RecorderSettings) -> StatusReporter:
    def patch(body: dict[str, object]) -> None:
        api.patch_custom_object_status(GROUP, VERSION, settings.session_namespace, PLURAL,
                                       settings.session_name, body)

    return StatusReporter(patch, settings.status_interval_seconds)


def _finalize_on_stop(api: InClusterClient, settings: RecorderSettings,
                      attempts: int = 3) -> Callable[[], bool]:
    """Whether the recording is over when the recorder stops: the session says so.

    SIGTERM alone does not tell a stop from a lost pod (kubectl delete pod, an eviction,
    a drain). Finalizing on a lost pod would close the recording, and the next pod could
    not continue it; so the recorder asks its session. When the API cannot say, it
    finalizes, as before: a stop is the common case.
    """

    def decide() -> bool:
        for attempt in range(1, attempts + 1):
            try:
                session = api.get_custom_object(GROUP, VERSION, settings.session_namespace,
                                                PLURAL, settings.session_name)
            except KubeApiError as exc:
                if exc.status == 404:
                    return True  # the session is gone: nothing will continue it
                log.warning("cannot read the session to decide whether to finalize "
                            "(attempt %d/%d): %s", attempt, attempts, exc)
            # Connection, timeout, or a token file emptied while it was rotated.
            except (OSError, urllib3.exceptions.HTTPError, KubeConfigError) as exc:
                log.warning("cannot read the session to decide whether to finalize "
                            "(attempt %d/%d): %s", attempt, attempts, exc)
            else:
                return contract.stop_intended(session)
            time.sleep(1.0)
        log.warning("finalizing without knowing whether the session still records")
        return True

    return decide


def _fail(reporter: StatusReporter | None, message: str, code: int,
          state: str = contract.PIPELINE_FAILED, extra: dict[str, object] | None = None) -> int:
    """One clear line for the pod's termination message, and the same in status."""
    print(f"lucid-recorder: {message}", file=sys.stderr, flush=True)
    if reporter is not None:
        reporter.update({"state": state, "message": message[:1024], **(extra or {})},
                        significant=True)
        reporter.flush(force=True)
    return code


def run(settings: RecorderSettings) -> int:
    try:
        api = InClusterClient.from_pod()
    except (KubeConfigError, OSError) as exc:
        # Without the API there is no status to write this into: stderr only.
        return _fail(None, f"cannot reach the Kubernetes API: {exc}", 2)
    reporter = _status_patcher(api, settings)
    try:
        spec = RecordingSessionSpec.model_validate(settings.session_spec)
    except ValidationError as exc:
        return _fail(reporter, f"session spec is invalid: {exc.error_count()} error(s)", 2)
    identity = SessionIdentity(namespace=settings.session_namespace,
                               name=settings.session_name, uid=settings.session_uid)
    try:
        recipient = recipient_key(spec.encryption, Path(settings.recipient_key_dir))
        credentials = MountedCredentials(Path(settings.storage_credentials_dir),
                                         f"Secret {spec.storage.credentials_secret_ref.name}")
        credentials.retrieve()  # unreadable files fail here, with the Secret's name
        store = object_store(spec.storage, identity, credentials=credentials,
                             retention=spec.retention)
        # At start, rejected credentials fail at once: nothing is recorded yet, and the
        # message says which Secret to fix.
        store.ensure_bucket(spec.storage.create_bucket)
        spool = Spool(Path(settings.spool_dir), settings.spool_max_bytes, identity)
        handed = (HandedOver.load(Path(settings.resume_dir) / contract.RESUME_FILE, identity)
                  if settings.resume_dir else None)
        sealer = resume(spool, store, recipient, handed)
    except (SealingError, StorageError) as exc:
        return _fail(reporter, str(exc), 3)
    recording = Recording(spec, spool, store, sealer, recipient, reporter,
                          grace_seconds=settings.termination_grace_seconds,
                          credentials=credentials,
                          auth_wait_seconds=settings.storage_auth_wait_seconds)
    target = capture_config(spec, settings.rdp_username.get_secret_value(),
                            settings.rdp_password.get_secret_value())
    # Which hot path runs (lucid_recorder.native): the image insists on the native core.
    log.info("recording %s/%s from %s:%d (hot path: %s)", settings.session_namespace,
             settings.session_name, target.host, target.port, native.implementation())

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await recording.run(capture_with_reconnect(target), stop,
                            finalize=_finalize_on_stop(api, settings))

    try:
        asyncio.run(main_loop())
    except CaptureError as exc:
        return _fail(reporter, f"capture failed: {exc}", 4)
    except ChunksNotUploaded as exc:
        # The recorder's last words: what storage never got, which the operator posts.
        return _fail(reporter, f"recording incomplete: {exc}", 6,
                     state=contract.PIPELINE_INCOMPLETE, extra={"unstoredChunks": exc.ranges})
    except (SealingError, StorageError) as exc:
        return _fail(reporter, f"storage failed: {exc}", 5)
    return 0


def main() -> int:
    try:
        settings = RecorderSettings()
    except ValidationError as exc:
        # Names of the missing or bad settings only: never their values.
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        print(f"lucid-recorder: invalid settings ({fields}); the operator sets "
              f"{contract.ENV_PREFIX}* in the pod", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, "INFO")
    # Before the first segment: freed segments and compression contexts then go back to
    # the kernel instead of accumulating in malloc's arenas (lucid_recorder.allocator).
    allocator.return_large_blocks(os.environ)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
