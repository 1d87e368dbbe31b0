"""Stages joined by bounded queues, each with its own counters.

A full queue blocks the stage before it, so a slow store slows the encoder,
which slows capture reading: memory stays bounded by the queue sizes instead
of growing with an outage. Blocking work (compression and encryption of large
chunks) runs in a worker thread so the event loop keeps reading the socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from lucid_recorder.pipeline import metrics

In = TypeVar("In")
Out = TypeVar("Out")

# Sentinel that travels down the queues when the input ends.
END: Any = object()

# The pipeline's stages, in order: the names status.pipeline.stages and the metrics'
# `stage` label both use, so a dashboard and `kubectl get -o yaml` speak of the same thing.
CAPTURE, COMPRESS, ENCRYPT, STORE = "capture", "compress", "encrypt", "store"
STAGE_NAMES = (CAPTURE, COMPRESS, ENCRYPT, STORE)


@dataclass
class StageStats:
    """The original PipelineManager's per-stage model, as the CR status reports it."""

    name: str
    items: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    processing_seconds: float = 0.0
    last_processed_at: float | None = None  # wall clock, seconds since the epoch

    def to_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name, "items": self.items, "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out, "errors": self.errors,
            "processingSeconds": round(self.processing_seconds, 3),
        }
        if self.last_processed_at is not None:
            entry["lastProcessedAt"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_processed_at))
        return entry


def size_of(item: object) -> int:
    if isinstance(item, bytes | bytearray | memoryview):
        return len(item)
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    return len(item) if isinstance(item, Sized) else 0


@dataclass
class Stage(Generic[In, Out]):
    """One step: takes items from `inbox`, puts results (zero or more) into `outbox`."""

    name: str
    work: Callable[[In], Awaitable[list[Out]]]
    inbox: asyncio.Queue[Any]
    outbox: asyncio.Queue[Any] | None
    stats: StageStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = StageStats(self.name)

    async def run(self) -> None:
        # One item per _step: its locals go with it, so this frame does not hold the last
        # item (a segment is megabytes) while it waits seconds for the next one.
        while await self._step():
            pass

    async def _step(self) -> bool:
        """Take one item and pass its results on; False once the input has ended."""
        item = await self.inbox.get()
        if item is END:
            if self.outbox is not None:
                await self.outbox.put(END)
            return False
        began = time.perf_counter()
        try:
            results = await self.work(item)
        except Exception:
            self.stats.errors += 1
            metrics.ERRORS.labels(self.name).inc()
            raise
        self.stats.processing_seconds += time.perf_counter() - began
        self.stats.items += 1
        self.stats.bytes_in += size_of(item)
        self.stats.last_processed_at = time.time()
        for result in results:
            self.stats.bytes_out += size_of(result)
            if self.outbox is not None:
                await self.outbox.put(result)
        return True
