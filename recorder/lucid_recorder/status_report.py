"""Reports the pipeline into the session's status: bounded rate, retried, never fatal.

The recorder owns `status.pipeline` and writes nothing else, with a JSON merge
patch through the status subresource, so it never clobbers the operator's
fields. A failed write is retried on the next tick; it never stops recording.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lucid.recorder.status")

PatchFn = Callable[[dict[str, Any]], None]


@dataclass
class RateGate:
    """Pure timing rule: routine updates at most every `interval`; significant ones at once."""

    interval: float
    last_write: float | None = None

    def due(self, now: float, significant: bool) -> bool:
        if significant or self.last_write is None:
            return True
        return now - self.last_write >= self.interval


@dataclass
class StatusReporter:
    patch: PatchFn
    interval: float
    clock: Callable[[], float] = time.monotonic
    gate: RateGate = field(init=False)
    _pending: dict[str, Any] | None = field(default=None, init=False)
    _significant: bool = field(default=False, init=False)
    # flush() runs in a worker thread while update() runs on the event loop.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    failures: int = field(default=0, init=False)
    writes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.gate = RateGate(self.interval)

    def update(self, pipeline: dict[str, Any], significant: bool = False) -> None:
        """Record the latest pipeline view; only the newest one is ever written."""
        with self._lock:
            self._pending = pipeline
            self._significant = self._significant or significant

    def flush(self, force: bool = False) -> bool:
        """Write the pending view if it is due. Returns True when nothing is left pending."""
        with self._lock:
            pending, significant = self._pending, self._significant
        if pending is None:
            return True
        now = self.clock()
        if not force and not self.gate.due(now, significant):
            return False
        try:
            self.patch({"status": {"pipeline": pending}})
        except Exception as exc:  # noqa: BLE001 - any failed write is retried, never fatal
            self.failures += 1
            log.warning("status write failed (%s: %s); will retry", type(exc).__name__, exc)
            return False
        self.writes += 1
        self.gate.last_write = now
        with self._lock:
            # A view that arrived while this one was being written (the final
            # Finalized report, say) stays pending for the next flush.
            if self._pending is not pending:
                return False
            self._pending = None
            self._significant = False
        return True

    async def run(self, stop: asyncio.Event, tick: float = 0.5) -> None:
        """Flush in the background until `stop`, then one last forced flush."""
        while not stop.is_set():
            await asyncio.to_thread(self.flush)
            try:
                await asyncio.wait_for(stop.wait(), timeout=tick)
            except TimeoutError:
                continue
        for _ in range(3):
            if await asyncio.to_thread(self.flush, True):
                return
            await asyncio.sleep(1.0)
