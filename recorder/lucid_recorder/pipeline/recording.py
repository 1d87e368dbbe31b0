"""One recording, end to end: capture → chunk → compress → encrypt → store.

Stages are joined by bounded queues (see stages.py). Compression, sealing
and uploads are blocking and run in worker threads. Stop (SIGTERM, or the
capture ending or failing) drains every stage, uploads what the spool holds and
writes the final manifest last. After SIGTERM that must fit in the pod's grace
period: when storage does not answer in time, the recorder stops retrying a
little before the kubelet would SIGKILL it and says which chunks it could not
upload (ChunksNotUploaded), instead of dying silently.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from lucid_common import contract
from lucid_common.api import RecordingSessionSpec, human_bytes
from lucid_recorder import format as fmt
from lucid_recorder.pipeline import metrics
from lucid_recorder.pipeline.convert import start_detail, to_records
from lucid_recorder.pipeline.screen import ScreenWatch
from lucid_recorder.pipeline.stages import (
    CAPTURE,
    COMPRESS,
    ENCRYPT,
    END,
    STORE,
    Stage,
    StageStats,
)
from lucid_recorder.rdp import events as ev
from lucid_recorder.rdp.errors import CaptureError
from lucid_recorder.sealing.compression import Codec, Compressed, compress_chunk
from lucid_recorder.sealing.sealer import ChunkInfo, SealedChunk, Sealer
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import (
    ChunksNotUploaded,
    ObjectStore,
    RetriesExhausted,
    RetryPolicy,
    Spool,
    SpoolDiskFull,
    SpoolFull,
    StorageAuthError,
    TransientStorageError,
    publish_manifest,
    upload_pending,
)
from lucid_recorder.storage.credentials import MountedCredentials

log = logging.getLogger("lucid.recorder")

# Bounded queues: at most this many finished segments wait per stage.
QUEUE_SIZE = 4
# An intermediate manifest after this many stored chunks shows progress.
MANIFEST_EVERY = 10
# Where a problem comes from; each clears on its own, and the status shows them all, in
# this order (a full spool disk while MinIO is down is two problems, not one or the other).
PROBLEM_SOURCES = ("capture", "screen", "spool", "storage")
# status.pipeline.message's limit in the CRD: a longer one would fail every status write.
MESSAGE_MAX = 1024
# After SIGTERM, this much of the grace period (at most SHUTDOWN_MARGIN_MAX seconds) is
# kept for the last status write and the exit, once uploads stop being retried.
SHUTDOWN_MARGIN_SHARE = 0.2
SHUTDOWN_MARGIN_MAX = 10.0
# How often the screen rule's timeout is checked while nothing arrives; the same tick
# publishes the status view and counters that a burst of updates left unreported.
SCREEN_POLL_SECONDS = 0.5
# Per update, the status view (pipeline_status) and the update counters are refreshed at
# most this often: on a busy desktop (2,000 updates/s and more) building the view for
# every update cost more CPU than recording the update, and the reporter writes at most
# one view every few seconds anyway. Significant reports are never deferred.
ROUTINE_REPORT_SECONDS = 0.25
# While rejected credentials wait for a rotated Secret, retries come at least this often,
# so new keys are used within seconds of the kubelet's update, not after a long backoff.
AUTH_RETRY_SECONDS = 5.0


def shutdown_deadline(stopped_at: float, grace_seconds: float) -> float:
    """When uploads stop being retried after SIGTERM: the grace period less a margin."""
    margin = min(SHUTDOWN_MARGIN_MAX, grace_seconds * SHUTDOWN_MARGIN_SHARE)
    return stopped_at + max(0.0, grace_seconds - margin)


@dataclass(frozen=True)
class Segment:
    """A finished, not yet sealed, recording segment."""

    start_ns: int
    end_ns: int
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class SealedRef:
    """A chunk sealed into the spool, as it passes to the store stage."""

    seq: int
    nbytes: int


@dataclass(frozen=True)
class CompressedSegment:
    start_ns: int
    end_ns: int
    payload: Compressed

    @property
    def nbytes(self) -> int:
        return len(self.payload.data)


@dataclass
class Recording:
    spec: RecordingSessionSpec
    spool: Spool
    store: ObjectStore
    sealer: Sealer
    recipient: X25519PublicKey
    reporter: StatusReporter
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # The pod's grace period: after SIGTERM, everything must be stored within it.
    grace_seconds: float | None = None
    # The mounted storage credentials: re-read when the store rejects them, for up to
    # auth_wait_seconds, so a rotated key reaches a running recorder.
    credentials: MountedCredentials | None = None
    auth_wait_seconds: float = 300.0
    state: str = contract.PIPELINE_CONNECTING
    updates: int = 0
    chunks_stored: int = 0
    bytes_stored: int = 0
    last_chunk_at: float | None = None
    oldest_unstored_ns: int | None = None
    problems: dict[str, str] = field(default_factory=dict)
    stats: dict[str, StageStats] = field(default_factory=dict)
    _sealed: asyncio.Event = field(default_factory=asyncio.Event)
    screen: ScreenWatch = field(init=False)
    _screen_state: str = field(default="", init=False)
    # A capture that failed for good: the recording is finalized, then this is raised.
    capture_error: CaptureError | None = field(default=None, init=False)
    # Set on SIGTERM (from the event loop); upload threads read both.
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _deadline: float | None = field(default=None, init=False)
    _auth_failing_since: float | None = field(default=None, init=False)
    _auth_retry: bool = field(default=False, init=False)
    # What per-update reporting has deferred (see ROUTINE_REPORT_SECONDS).
    _reported_at: float = field(default=float("-inf"), init=False)
    _unreported: bool = field(default=False, init=False)
    _uncounted_updates: int = field(default=0, init=False)
    _uncounted_rects: int = field(default=0, init=False)
    # Recording time is nanoseconds since the session started (wall clock,
    # kept in the spool), so a restarted pod continues the same timeline.
    session_start_unix_ns: int = 0
    _mono_at_start: int = 0

    def __post_init__(self) -> None:
        self.screen = ScreenWatch(self.spec.recording.screen_timeout_seconds * 10**9)
        started = self.spool.state.started_at
        self.session_start_unix_ns = (int(started.timestamp() * 10**9) if started is not None
                                      else time.time_ns())
        self._mono_at_start = self.session_start_unix_ns - (time.time_ns() - time.monotonic_ns())
        # A restarted recorder keeps counting where the stored recording stands.
        pending = {chunk.seq for chunk in self.spool.pending()}
        stored = [info for seq, info in self.spool.state.chunks.items() if seq not in pending]
        self.chunks_stored = len(stored)
        self.bytes_stored = sum(info.sealed_bytes for info in stored)

    @property
    def problem(self) -> str:
        """Every current problem, one line: what status.pipeline.message (and Degraded) says."""
        text = "; ".join(self.problems[s] for s in PROBLEM_SOURCES if self.problems.get(s))
        return text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX - 1] + "…"

    def set_problem(self, source: str, message: str) -> None:
        """Report (or with "" clear) the problem of one source; the others stay."""
        if source not in PROBLEM_SOURCES:
            raise ValueError(f"unknown problem source {source!r}")
        self.problems[source] = message

    def session_ns(self, monotonic_ns: int) -> int:
        """A capture timestamp (monotonic clock) on the session's timeline."""
        return max(0, monotonic_ns - self._mono_at_start)

    # -- status -----------------------------------------------------------------------

    def pipeline_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "state": self.state,
            "stages": [s.to_status() for s in self.stats.values()],
            "chunksStored": self.chunks_stored,
            "bytesStored": self.bytes_stored,
            "storedHuman": human_bytes(self.bytes_stored),
            "updatesCaptured": self.updates,
            "location": {"bucket": self.store.bucket, "prefix": self.store.layout.root},
            "message": self.problem,
            "screen": self.screen.state,
            "chainHead": self.chain_head(),
        }
        if self.sealer.signer is not None:
            # The operator countersigns this key; the bucket writer cannot reach the status.
            status["signingKey"] = {
                "epoch": self.sealer.epoch,
                "publicKey": base64.b64encode(self.sealer.signer.public_raw).decode()}
        if self.last_chunk_at is not None:
            status["lastChunkAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                  time.gmtime(self.last_chunk_at))
        status["uploadLagSeconds"] = round(self.upload_lag(), 3)
        return status

    def upload_lag(self) -> float:
        """Age of the oldest recorded data not yet stored, in seconds (0: all stored)."""
        if self.oldest_unstored_ns is None:
            return 0.0
        return max(0.0, (self.session_ns(time.monotonic_ns()) - self.oldest_unstored_ns) / 1e9)

    def chain_head(self) -> dict[str, Any]:
        """The stored prefix: uploads go strictly in order, so it ends before the first
        chunk still in the spool."""
        chunks = self.spool.state.chunks
        pending = [chunk.seq for chunk in self.spool.pending()]
        end = min(pending) if pending else max(chunks, default=-1) + 1
        head: dict[str, Any] = {"chunks": end}
        if end > 0 and end - 1 in chunks:
            head["sha256"] = chunks[end - 1].sha256
        return head

    def report(self, significant: bool = False) -> None:
        self._count()
        self._unreported = False
        self._reported_at = time.monotonic()
        self.reporter.update(self.pipeline_status(), significant)

    def _routine_report(self) -> None:
        """After one update: report, unless a report was made less than
        ROUTINE_REPORT_SECONDS ago (then the screen watcher's tick makes it)."""
        self._unreported = True
        if time.monotonic() - self._reported_at >= ROUTINE_REPORT_SECONDS:
            self.report()

    def _count(self) -> None:
        """Add the updates counted since the last call to the Prometheus counters."""
        if self._uncounted_updates:
            metrics.UPDATES.inc(self._uncounted_updates)
            self._uncounted_updates = 0
        if self._uncounted_rects:
            metrics.RECTANGLES.inc(self._uncounted_rects)
            self._uncounted_rects = 0

    # -- stages -----------------------------------------------------------------------

    async def _chunk(self, source: AsyncIterator[ev.Event], out: asyncio.Queue[Any],
                     stop: asyncio.Event) -> None:
        """Capture events into self-contained segments; the capture side of the pipeline."""
        stats = self.stats.setdefault(CAPTURE, StageStats(CAPTURE))
        writer: fmt.RecordingWriter | None = None
        last_ts = 0
        watcher = asyncio.create_task(self._watch_screen())
        try:
            try:
                async for event in _until(source, stop):
                    stats.items += 1
                    stats.last_processed_at = time.time()
                    if isinstance(event, ev.Connected):
                        if writer is None:
                            writer = self._writer(event)
                            writer.add(self.session_ns(event.t_ns),
                                       fmt.Start(start_detail(event)))
                        self.state = contract.PIPELINE_CAPTURING
                        self.set_problem("capture", "")
                        self.screen.connected(event.t_ns, event.width, event.height,
                                              event.credentials_checked)
                        metrics.RDP_CONNECTED.set(1)
                        self._check_screen(report=False)
                        self.report(significant=True)
                        continue
                    if isinstance(event, ev.Disconnected):
                        if writer is not None:
                            await self._emit_all(writer.flush(), out)
                        self.state = contract.PIPELINE_CONNECTING
                        self.set_problem("capture", f"disconnected: {event.reason}")
                        self.screen.disconnected()
                        metrics.RDP_CONNECTED.set(0)
                        metrics.ERRORS.labels("capture").inc()
                        self._check_screen(report=False)
                        self.report(significant=True)
                        continue
                    if isinstance(event, ev.LogonConfirmed):
                        self.screen.logon_confirmed()
                        self._check_screen()
                        continue
                    if isinstance(event, ev.Idle):
                        if writer is not None:
                            await self._emit_all(writer.flush(), out)
                        continue
                    if isinstance(event, ev.Gap):
                        metrics.RETRIES.labels("rdp_connect").inc()
                    elif isinstance(event, ev.DesktopResize):
                        self.screen.resize(event.w, event.h)
                    if writer is None:
                        continue
                    self.updates += 1
                    self._uncounted_updates += 1
                    if isinstance(event, ev.Rect):
                        self._uncounted_rects += 1
                        stats.bytes_in += len(event.rgb)
                        self.screen.rect(event.x, event.y, event.w, event.h)
                        self._check_screen()
                    ts = self.session_ns(event.t_ns)
                    last_ts = max(last_ts, ts)
                    for record in to_records(event, self.session_ns):
                        await self._emit_all(writer.add(ts, record), out)
                    self._routine_report()
            except CaptureError as exc:
                # Nothing more will come, but what came is kept: the last segment, the
                # spool and the final manifest still go up, then the error is raised.
                metrics.ERRORS.labels("capture").inc()
                stats.errors += 1
                self.capture_error = exc
                self.set_problem("capture", f"capture failed: {exc}")
                self.report(significant=True)
            if writer is not None:
                stop_ts = max(last_ts, self.session_ns(time.monotonic_ns()))
                why = "capture failed" if self.capture_error is not None else "stopped"
                writer.add(stop_ts, fmt.Stop(why))
                await self._emit(writer.close(stop_ts), out)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            self._count()
            metrics.RDP_CONNECTED.set(0)
            await out.put(END)

    async def _watch_screen(self) -> None:
        """The screen rule's timeout passes while nothing arrives: check it on a clock;
        and what per-update reporting deferred is reported on the same tick."""
        while True:
            await asyncio.sleep(SCREEN_POLL_SECONDS)
            self._check_screen()
            if self._unreported:
                self.report()

    def _check_screen(self, report: bool = True) -> None:
        """Turn a change of the screen rule's state into the status (and Degraded)."""
        state = self.screen.poll(time.monotonic_ns())
        if state == self._screen_state:
            return
        self._screen_state = state
        metrics.SCREEN_SHOWN.set(1 if state == contract.SCREEN_SHOWN else 0)
        if state == contract.SCREEN_MISSING:
            message = self._no_screen_message()
            log.warning("%s", message)
            self.set_problem("screen", message)
        else:
            if self.problems.get("screen"):
                log.info("the remote session's screen arrived; NoScreenUpdates is over")
            self.set_problem("screen", "")
        if report:
            self.report(significant=True)

    def _no_screen_message(self) -> str:
        target = self.spec.target
        seen = self.screen.updates_since_connect
        what = ("no screen update at all" if seen == 0 else
                f"only the server's own screen ({seen} updates, no full frame of the session)")
        return (f"{what} within {self.spec.recording.screen_timeout_seconds}s of connecting "
                f"to {target.host}:{target.port}: the login was probably refused (xrdp shows a "
                "wrong password only on its screen, and in its log as \"Error connecting to "
                f"user session\"); check Secret {target.credentials_secret_ref.name}")

    def _writer(self, connected: ev.Connected) -> fmt.RecordingWriter:
        chunking = self.spec.chunking
        return fmt.RecordingWriter(
            connected.width, connected.height,
            segment_ns=chunking.max_seconds * 10**9,
            keyframe_interval_ns=self.spec.recording.keyframe_interval_seconds * 10**9,
            max_segment_bytes=chunking.max_bytes,
            session_start_unix_ns=self.session_start_unix_ns,
            start_ns=self.session_ns(connected.t_ns),
            first_seq=self.sealer.next_seq,
            frame_interval_ns=self.spec.recording.frame_interval_ns,
        )

    async def _emit_all(self, finished: list[fmt.FinishedSegment],
                        out: asyncio.Queue[Any]) -> None:
        # Its own frame: a loop variable in _chunk would keep the last segment (megabytes)
        # referenced until the next one closes, seconds later.
        for done in finished:
            await self._emit(done, out)

    async def _emit(self, done: fmt.FinishedSegment, out: asyncio.Queue[Any]) -> None:
        segment = Segment(done.start_ns, done.end_ns, done.data)
        stats = self.stats[CAPTURE]
        stats.bytes_out += segment.nbytes
        metrics.STAGE_BYTES.labels(CAPTURE).inc(segment.nbytes)
        if self.oldest_unstored_ns is None:
            self.oldest_unstored_ns = done.end_ns
        metrics.QUEUE_DEPTH.labels(COMPRESS).set(out.qsize() + 1)
        await out.put(segment)

    async def _compress(self, segment: Segment) -> list[CompressedSegment]:
        codec = Codec.from_name(self.spec.compression.codec.value)
        payload = await asyncio.to_thread(compress_chunk, segment.data, codec,
                                          self.spec.compression.level)
        metrics.STAGE_BYTES.labels(COMPRESS).inc(len(payload.data))
        return [CompressedSegment(segment.start_ns, segment.end_ns, payload)]

    async def _seal(self, item: CompressedSegment) -> list[int]:
        """Seal into the spool; a full spool or disk waits (back-pressure) and says so."""
        while True:
            try:
                chunk = await asyncio.to_thread(self.spool.seal_into, self.sealer, item.payload,
                                                item.start_ns, item.end_ns)
                break
            except SpoolFull as exc:
                await self._wait_for_room(f"spool full ({exc})")
            except SpoolDiskFull as exc:
                # Sealed already: its sequence number and nonce are spent, so the same
                # bytes are written again later, never sealed twice.
                metrics.ERRORS.labels("encrypt").inc()
                chunk = await self._put_when_room(exc.chunk, str(exc))
                break
        if self.problems.get("spool"):
            self.set_problem("spool", "")  # spooled again: back-pressure is over
            self.report(significant=True)
        metrics.STAGE_BYTES.labels(ENCRYPT).inc(len(chunk.data))
        metrics.SPOOL_BYTES.set(self.spool.used_bytes)
        return [SealedRef(chunk.seq, len(chunk.data))]

    async def _wait_for_room(self, why: str) -> None:
        self.set_problem("spool", f"{why}; waiting for uploads to free space")
        self.report(significant=True)
        await asyncio.sleep(1.0)

    async def _put_when_room(self, chunk: SealedChunk, why: str) -> SealedChunk:
        while True:
            await self._wait_for_room(why)
            try:
                await asyncio.to_thread(self.spool.put, chunk)
                return chunk
            except (SpoolFull, SpoolDiskFull) as exc:
                why = str(exc)

    async def _store(self, sealed: SealedRef) -> list[Any]:
        # Sealed chunks are safe on disk: the store stage only wakes the uploader, so
        # an outage fills the bounded spool (which then pushes back) rather than
        # stalling capture at once. Its bytes out are counted as the uploads finish.
        self._sealed.set()
        return []

    async def _uploader(self, sealing_done: asyncio.Event) -> None:
        while True:
            await _first(self._sealed.wait(), sealing_done.wait())
            self._sealed.clear()
            try:
                await asyncio.to_thread(self._upload_blocking)
            except RetriesExhausted as exc:
                if self._deadline is None:
                    raise
                raise self._not_uploaded(exc) from exc
            if self.spool.pending() and self._past_deadline():
                raise self._not_uploaded(None)
            if sealing_done.is_set() and not self.spool.pending():
                return

    # -- shutdown within the grace period, and storage errors worth retrying ---------

    def begin_shutdown(self) -> None:
        """SIGTERM: from now on, retries end at the grace period's deadline."""
        if self.grace_seconds is not None and self._deadline is None:
            self._deadline = shutdown_deadline(time.monotonic(), self.grace_seconds)
            log.info("stopping: uploads have %.0fs of the %gs grace period",
                     self._deadline - time.monotonic(), self.grace_seconds)
        self._stopping.set()

    def _deadline_now(self) -> float | None:
        return self._deadline

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _sleep(self, seconds: float) -> None:
        """A retry's wait, cut short by SIGTERM once: storage gets one more try at once."""
        if self._auth_retry:
            seconds = min(seconds, AUTH_RETRY_SECONDS)
        if self._stopping.is_set():
            time.sleep(seconds)
        else:
            self._stopping.wait(seconds)

    def _not_uploaded(self, exc: BaseException | None) -> ChunksNotUploaded:
        pending = self.spool.pending()
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        why = (f"storage did not answer within the {self.grace_seconds:g}s grace period "
               f"({cause})" if cause is not None else
               f"the {self.grace_seconds:g}s grace period ran out while uploading")
        lost = ChunksNotUploaded([c.seq for c in pending], sum(c.size for c in pending), why)
        log.error("%s", lost)
        return lost

    def _retryable(self, exc: BaseException) -> bool:
        """Transient errors, and rejected credentials while a rotated Secret may come."""
        self._auth_retry = False
        if isinstance(exc, TransientStorageError):
            return True
        if not isinstance(exc, StorageAuthError) or self.credentials is None:
            return False
        now = time.monotonic()
        if self._auth_failing_since is None:
            self._auth_failing_since = now
        metrics.RETRIES.labels("storage_credentials").inc()
        try:
            changed = self.credentials.reload()
        except StorageAuthError as unreadable:
            log.warning("%s", unreadable)
            changed = False
        self._auth_retry = True
        return changed or now - self._auth_failing_since < self.auth_wait_seconds

    def _storage_problem(self, exc: BaseException, attempt: int, delay: float) -> str:
        if isinstance(exc, StorageAuthError) and self.credentials is not None:
            since = self._auth_failing_since or time.monotonic()
            left = max(0.0, self.auth_wait_seconds - (time.monotonic() - since))
            delay = min(delay, AUTH_RETRY_SECONDS)
            return (f"{exc}; re-reading {self.credentials.source} for rotated keys, "
                    f"retry {attempt} in {delay:.1f}s, failing in {left:.0f}s")
        return f"storage unavailable ({type(exc).__name__}); retry {attempt} in {delay:.1f}s"

    def _publish(self, complete: bool) -> None:
        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            metrics.RETRIES.labels("manifest").inc()
            metrics.ERRORS.labels("store").inc()
            self.set_problem("storage", self._storage_problem(exc, attempt, delay))
            self.report(significant=attempt == 1)

        try:
            publish_manifest(self.spool, self.store, self.recipient, self.retry,
                             complete=complete, deadline=self._deadline_now, on_retry=on_retry,
                             sleep=self._sleep, retryable=self._retryable, sealer=self.sealer)
        except StorageAuthError as exc:
            raise self._auth_gave_up(exc) from exc

    def _auth_gave_up(self, exc: StorageAuthError) -> StorageAuthError:
        """The last words after waiting for a rotated key in vain say how long it waited."""
        if self.credentials is None or self._auth_failing_since is None:
            return exc
        waited = time.monotonic() - self._auth_failing_since
        return StorageAuthError(f"{exc}; {self.credentials.source} held no key the store "
                                f"accepts in {waited:.0f}s of re-reading it "
                                f"(storageAuthWaitSeconds {self.auth_wait_seconds:g})")

    def _upload_blocking(self) -> int:
        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            metrics.RETRIES.labels("upload").inc()
            metrics.ERRORS.labels("store").inc()
            self.set_problem("storage", self._storage_problem(exc, attempt, delay))
            self.report(significant=attempt == 1)

        def on_uploaded(info: ChunkInfo | None, seconds: float) -> None:
            metrics.UPLOAD_SECONDS.observe(seconds)
            metrics.CHUNKS_STORED.inc()
            self.chunks_stored += 1
            self._auth_failing_since = None
            self.set_problem("storage", "")  # it answered
            if info is not None:
                self.bytes_stored += info.sealed_bytes
                self.stats[STORE].bytes_out += info.sealed_bytes
                metrics.STAGE_BYTES.labels(STORE).inc(info.sealed_bytes)
            self.last_chunk_at = time.time()

        before = self.chunks_stored
        try:
            drained = upload_pending(self.spool, self.store, self.retry, on_retry=on_retry,
                                     on_uploaded=on_uploaded, deadline=self._deadline_now,
                                     stop=self._past_deadline, sleep=self._sleep,
                                     retryable=self._retryable)
        except StorageAuthError as exc:
            metrics.ERRORS.labels("store").inc()
            raise self._auth_gave_up(exc) from exc
        except Exception:
            metrics.ERRORS.labels("store").inc()
            raise
        finally:
            metrics.SPOOL_BYTES.set(self.spool.used_bytes)
        if drained.remaining == 0:
            self.oldest_unstored_ns = None
        uploaded = self.chunks_stored - before
        if uploaded and self.chunks_stored % MANIFEST_EVERY < uploaded and not self._deadline:
            self._publish(complete=False)
        self.report(significant=uploaded > 0)
        return uploaded

    # -- the whole run ----------------------------------------------------------------

    async def run(self, source: AsyncIterator[ev.Event], stop: asyncio.Event,
                  finalize: Callable[[], bool] = lambda: True) -> None:
        """Record until `stop` is set or the source ends, then store everything.

        `finalize` (blocking, run in a thread) says at the end whether the recording is
        over: True writes the final manifest; False leaves it open, every chunk stored,
        for the next pod of the session to continue after a declared gap.
        """
        segments: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        compressed: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        sealed: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        stages = [
            Stage(COMPRESS, self._compress, segments, compressed),
            Stage(ENCRYPT, self._seal, compressed, sealed),
            Stage(STORE, self._store, sealed, None),
        ]
        # In pipeline order, so status.pipeline.stages reads capture → store.
        self.stats.setdefault(CAPTURE, StageStats(CAPTURE))
        for stage in stages:
            self.stats[stage.name] = stage.stats
        status_stop = asyncio.Event()
        status_task = asyncio.create_task(self.reporter.run(status_stop))
        metrics.UPLOAD_LAG.set_function(self.upload_lag)

        async def on_stop() -> None:
            await stop.wait()
            self.begin_shutdown()

        stop_task = asyncio.create_task(on_stop())
        try:
            # Chunks a previous run of this pod left in the spool go up first.
            await asyncio.to_thread(self._upload_blocking)
            sealing_done = asyncio.Event()

            async def last_stage() -> None:
                try:
                    await stages[-1].run()
                finally:
                    sealing_done.set()

            # One TaskGroup: any stage failing (bad credentials in the uploader, a
            # capture error) cancels the others instead of leaving them waiting.
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._chunk(source, segments, stop))
                    for stage in stages[:-1]:
                        group.create_task(stage.run())
                    group.create_task(last_stage())
                    group.create_task(self._uploader(sealing_done))
            except BaseExceptionGroup as failed:
                raise _root_cause(failed) from None
            complete = await asyncio.to_thread(finalize)
            try:
                await asyncio.to_thread(self._publish, complete)
            except RetriesExhausted as exc:
                if self._deadline is None:
                    raise
                raise self._not_uploaded(exc) from exc
            if complete:
                self.state = contract.PIPELINE_FINALIZED
                log.info("recording finalized: %d chunks, %s stored", self.chunks_stored,
                         human_bytes(self.bytes_stored))
            else:
                self.state = contract.PIPELINE_INTERRUPTED
                log.warning("stopped although the session still records (pod deleted or "
                            "evicted): %d chunks, %s stored; the recording stays open for "
                            "the next pod", self.chunks_stored, human_bytes(self.bytes_stored))
            self.report(significant=True)
            if self.capture_error is not None:
                raise self.capture_error
        finally:
            stop_task.cancel()
            await asyncio.gather(stop_task, return_exceptions=True)
            status_stop.set()
            await status_task


def _root_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error in a (possibly nested) group, for a one-line report."""
    first = group.exceptions[0]
    return _root_cause(first) if isinstance(first, BaseExceptionGroup) else first


async def _first(*waits: Awaitable[Any]) -> None:
    """Return when the first of `waits` completes; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _until(source: AsyncIterator[ev.Event], stop: asyncio.Event
                 ) -> AsyncIterator[ev.Event]:
    """Events from `source` until `stop` is set; the capture is closed either way.

    The source is awaited in the consumer's own task, and `stop` cancels that task only
    while it waits for the source (as asyncio.timeout cancels, and tells its own
    cancellation from any other by uncancel()). A task and an asyncio.wait per event,
    as before, cost more CPU than the update itself on a busy desktop.
    """
    iterator = source.__aiter__()
    task = asyncio.current_task()
    assert task is not None
    waiting = False
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        if waiting and not interrupted:
            interrupted = True
            task.cancel()

    stopped = asyncio.ensure_future(stop.wait())
    stopped.add_done_callback(lambda done: None if done.cancelled() else interrupt())
    try:
        while not stop.is_set():
            waiting = True
            try:
                event = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Ours (stop was set) when uncancel() leaves no other cancellation pending.
                if interrupted and task.uncancel() == 0:
                    return
                raise
            finally:
                waiting = False
            yield event
    finally:
        stopped.cancel()
        aclose: Callable[[], Any] | None = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()

