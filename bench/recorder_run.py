"""Driving the real `Recording` pipeline: construction, replayed sources, latency probing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from array import array
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import MIB, percentile
from lucid_common.api import RecordingSessionSpec
from lucid_recorder.pipeline import recording as recording_module
from lucid_recorder.pipeline.recording import Recording
from lucid_recorder.rdp import events as ev
from lucid_recorder.sealing.keys import keygen, read_public_key
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo
from lucid_recorder.status_report import StatusReporter
from lucid_recorder.storage import RetryPolicy, Spool, resume
from lucid_recorder.storage.from_spec import object_store

SPOOL_BYTES = 512 * MIB


def build_recording(workdir: Path, spec: RecordingSessionSpec, access_key: str,
                    secret_key: str, name: str) -> Recording:
    """A Recording wired as lucid-recorder's main wires it, with status writes discarded."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys = keygen(workdir / "keys")
    identity = SessionIdentity(namespace="bench", name=name, uid=str(uuid.uuid4()))
    store = object_store(spec.storage, identity, access_key, secret_key)
    store.ensure_bucket(True)
    spool = Spool(workdir / "spool", SPOOL_BYTES, identity)
    recipient = read_public_key(keys.public)
    sealer = resume(spool, store, recipient)
    reporter = StatusReporter(lambda _body: None, interval=5.0)
    return Recording(spec, spool, store, sealer, recipient, reporter,
                     retry=RetryPolicy(initial_delay=0.2, max_delay=2.0))


def bucket_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- replayed sources ---------------------------------------------------------------------


def _updates(events: list[ev.Event]) -> tuple[ev.Connected, list[ev.Event]]:
    connected = events[0]
    if not isinstance(connected, ev.Connected):
        raise ValueError("a recorded stream starts with Connected")
    rest = [e for e in events[1:] if not isinstance(e, ev.Connected | ev.Disconnected)]
    return connected, rest


async def replay_fast(events: list[ev.Event]) -> AsyncIterator[ev.Event]:
    """One pass, as fast as the consumer takes it, keeping the recorded spacing of timestamps.

    Timestamps are shifted to start now, so the chunker cuts the same segments as it
    would have live (its clock is the events', not the wall clock).
    """
    connected, updates = _updates(events)
    shift = time.monotonic_ns() - connected.t_ns
    yield dataclasses.replace(connected, t_ns=connected.t_ns + shift)
    for event in updates:
        yield dataclasses.replace(event, t_ns=event.t_ns + shift)


async def replay_paced(events: list[ev.Event]) -> AsyncIterator[ev.Event]:
    """Endless real-time replay: each update re-emitted at its recorded offset, loop after loop.

    Each event is stamped with the time it is handed over, as the capture source stamps
    it when decoded, so latency is measured from that moment.
    """
    connected, updates = _updates(events)
    yield dataclasses.replace(connected, t_ns=time.monotonic_ns())
    if not updates:
        return
    first = updates[0].t_ns
    while True:
        began = time.monotonic_ns()
        for event in updates:
            delay = (began + event.t_ns - first - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            yield dataclasses.replace(event, t_ns=time.monotonic_ns())
        await asyncio.sleep(0.1)


# -- latency from update to durable object --------------------------------------------------


@dataclass
class LatencyProbe:
    """Stamps of every update (capture time) and of every chunk's acknowledged upload.

    An update's latency is the time from its capture stamp to the moment the store
    acknowledged the chunk holding it: that is when it became durable.
    """

    event_ns: array = field(default_factory=lambda: array("q"))
    # (chunk start_ns, chunk end_ns) on the session timeline, and the ack's monotonic_ns.
    acks: list[tuple[int, int, int]] = field(default_factory=list)

    async def watch(self, source: AsyncIterator[ev.Event],
                    on_connected: Callable[[], None] | None = None
                    ) -> AsyncIterator[ev.Event]:
        async with contextlib.aclosing(source) as stream:  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, ev.Connected):
                    if on_connected is not None:
                        on_connected()
                elif not isinstance(event, ev.Disconnected | ev.Idle):
                    self.event_ns.append(event.t_ns)
                yield event

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """Wrap the pipeline's upload_pending so each acknowledged chunk is stamped."""
        original = recording_module.upload_pending

        def upload_pending(*args: Any, on_uploaded: Callable[..., None] | None = None,
                           **kwargs: Any) -> Any:
            def stamped(info: ChunkInfo | None, seconds: float) -> None:
                now = time.monotonic_ns()
                if info is not None:
                    self.acks.append((info.start_ns, info.end_ns, now))
                if on_uploaded is not None:
                    on_uploaded(info, seconds)
            return original(*args, on_uploaded=stamped, **kwargs)

        recording_module.upload_pending = upload_pending  # type: ignore[assignment]
        try:
            yield
        finally:
            recording_module.upload_pending = original  # type: ignore[assignment]

    def latencies_s(self, recording: Recording) -> tuple[list[float], int]:
        """(latency of every update that reached the store, updates that did not)."""
        chunks = sorted(self.acks)
        starts = [start for start, _end, _ack in chunks]
        out: list[float] = []
        missing = 0
        for t_ns in self.event_ns:
            ts = recording.session_ns(t_ns)
            index = bisect_right(starts, ts) - 1
            if index < 0 or ts > chunks[index][1]:
                missing += 1
                continue
            out.append((chunks[index][2] - t_ns) / 1e9)
        return out, missing

    def summary(self, recording: Recording) -> dict[str, Any]:
        values, missing = self.latencies_s(recording)
        chunk_seconds = [(end - start) / 1e9 for start, end, _ack in self.acks]
        return {
            "updates": len(values),
            "updates_not_stored": missing,
            "chunks": len(self.acks),
            "chunk_seconds_median": percentile(chunk_seconds, 50) if chunk_seconds else None,
            "p50_s": percentile(values, 50),
            "p90_s": percentile(values, 90),
            "p99_s": percentile(values, 99),
            "max_s": max(values) if values else None,
            "min_s": min(values) if values else None,
            # 101 quantiles draw the distribution without storing every update.
            "quantiles_s": [percentile(values, q) for q in range(101)] if values else [],
        }
