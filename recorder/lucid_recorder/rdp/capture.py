"""The capture source: `async for event in capture(config)`.

Use it under `contextlib.aclosing(...)` (or break out of the loop and let the
generator be closed) so the connection is shut when the consumer stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lucid_recorder.rdp.compat import CompatRDPConnection, WireTap
from lucid_recorder.rdp.config import CaptureConfig
from lucid_recorder.rdp.errors import (
    AuthenticationError,
    CaptureError,
    ConnectError,
    ProtocolError,
    StepTimeoutError,
)
from lucid_recorder.rdp.events import (
    Connected,
    Disconnected,
    Event,
    Gap,
    Idle,
    LogonConfirmed,
    PointerShape,
    Rect,
)

log = logging.getLogger(__name__)

# Lists of decoded events (one per PDU) waiting for the consumer; beyond this the reader
# stops reading and TCP flow control holds the server back.
EVENT_QUEUE_SIZE = 4096
# ... and beyond this many bytes of pixels: a few bytes of RLE can decode to
# a whole desktop, so the count alone would let a server queue gigabytes.
EVENT_QUEUE_BYTES = 32 * 2**20


class EventQueue(asyncio.Queue[list[Event]]):
    """A queue of event lists bounded by count and by the pixel bytes it holds (one list
    always fits; updates.PENDING_BYTES bounds a list's pixels)."""

    def __init__(self, maxsize: int = EVENT_QUEUE_SIZE,
                 max_bytes: int = EVENT_QUEUE_BYTES) -> None:
        super().__init__(maxsize)
        self.max_bytes = max_bytes
        self.nbytes = 0

    def full(self) -> bool:
        return super().full() or self.nbytes >= self.max_bytes

    def _put(self, item: list[Event]) -> None:
        super()._put(item)  # type: ignore[misc]
        self.nbytes += _pixel_bytes(item)

    def _get(self) -> list[Event]:
        item: list[Event] = super()._get()  # type: ignore[misc]
        self.nbytes -= _pixel_bytes(item)
        return item


def _pixel_bytes(events: list[Event]) -> int:
    total = 0
    for event in events:
        if isinstance(event, Rect):
            total += len(event.rgb)
        elif isinstance(event, PointerShape):
            total += len(event.rgba)
    return total


class MonotonicClock:
    """time.monotonic_ns(), never going backwards across one capture and its reconnects."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        self._last = max(self._last, time.monotonic_ns())
        return self._last


async def capture(config: CaptureConfig, *, clock: MonotonicClock | None = None,
                  wire_tap: WireTap | None = None,
                  stats: dict[str, int] | None = None) -> AsyncIterator[Event]:
    """Connect, yield Connected, then every update, and Disconnected when the session ends.

    LogonConfirmed comes once, just before the update it arrived with, if the server
    confirms the logon (Windows does; xrdp never does). With config.idle_seconds, Idle
    comes whenever that long passed without an update.

    Connection failures raise (ConnectError, TlsVerificationError,
    AuthenticationError, StepTimeoutError, ProtocolError). After Connected,
    the stream always ends with Disconnected; if a decoding or protocol error
    ended it, that error is raised right after. `stats`, when given, receives
    counters (bitmap_updates, rects, bitmap_bytes, pointer_updates).
    """
    clock = clock or MonotonicClock()
    events = EventQueue()
    connection = CompatRDPConnection(config, events, clock, wire_tap)
    try:
        yield await connection.establish()
        deadline = None
        if config.logon_timeout is not None:
            deadline = asyncio.get_running_loop().time() + config.logon_timeout
        confirmed = False
        while True:
            batch = await _next_events(connection, events, deadline, clock)
            if connection.logged_on.is_set():
                deadline = None
            if not confirmed and connection.logged_on.is_set():
                # Stamped like the event it came with, so timestamps never decrease.
                confirmed = True
                yield LogonConfirmed(batch[0].t_ns)
            for event in batch:
                yield event
                if isinstance(event, Disconnected):
                    if connection.reader_error is not None:
                        raise connection.reader_error
                    return
    finally:
        if stats is not None:
            stats.update(connection.stats)
        await connection.close()


async def _next_events(connection: CompatRDPConnection, events: asyncio.Queue[list[Event]],
                       deadline: float | None, clock: MonotonicClock) -> list[Event]:
    """The next list of events (never empty); [Idle] after config.idle_seconds without
    one; past the logon deadline without a confirmed logon, AuthenticationError."""
    idle = connection.config.idle_seconds
    if idle is None or not events.empty():
        return await _next_update(connection, events, deadline)
    # A timer, not a task per wait: waiting is what a busy desktop does between PDUs.
    try:
        async with asyncio.timeout(idle):
            return await _next_update(connection, events, deadline)
    except TimeoutError:
        return [Idle(clock())]


async def _next_update(connection: CompatRDPConnection, events: asyncio.Queue[list[Event]],
                       deadline: float | None) -> list[Event]:
    if deadline is None or connection.logged_on.is_set():
        return await events.get()
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(events.get(), max(0.0, remaining))
    except TimeoutError:
        if connection.logged_on.is_set():
            return await events.get()
        raise AuthenticationError(
            f"the server did not confirm a logon within {connection.config.logon_timeout:g} s"
        ) from None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt n (1-based): initial * factor**(n-1), at most maximum."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))


# Worth another try: the network or the server may come back. Credentials and
# certificates do not fix themselves, so those errors end the capture.
RETRYABLE = (ConnectError, StepTimeoutError, ProtocolError)


async def capture_with_reconnect(config: CaptureConfig, max_attempts: int = 5,
                                 backoff: Backoff | None = None, *,
                                 clock: MonotonicClock | None = None) -> AsyncIterator[Event]:
    """capture() that reconnects after a dropped connection and marks the hole with a Gap.

    `max_attempts` bounds consecutive failed connection attempts (the first
    connection included); a successful connection resets the count. When it is
    exhausted the last error is raised. A Gap(start_ns, end_ns) is yielded just
    before the Connected event of each reconnection, start_ns being the
    Disconnected event's time.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    backoff = backoff or Backoff()
    clock = clock or MonotonicClock()
    failures = 0  # consecutive attempts that raised, for max_attempts
    retries = 0  # reconnects since the last Connected, for the backoff delay
    gap_start: int | None = None
    gap_reason = ""
    while True:
        try:
            async for event in _session(config, clock):
                if isinstance(event, Connected):
                    failures = retries = 0
                    if gap_start is not None:
                        yield Gap(event.t_ns, gap_start, event.t_ns, gap_reason)
                        gap_start = None
                elif isinstance(event, Disconnected):
                    gap_start, gap_reason = event.t_ns, event.reason
                yield event
        except RETRYABLE as exc:
            failures += 1
            if gap_start is None:
                gap_start, gap_reason = clock(), f"{type(exc).__name__}: {exc}"
            if failures >= max_attempts:
                raise
            log.warning("RDP capture attempt %d failed (%s: %s)", failures,
                        type(exc).__name__, exc)
        else:
            # The server ended the session cleanly: reconnect too, but never
            # in a tight loop against a server that hangs up at once.
            if gap_start is None:
                gap_start, gap_reason = clock(), "the session ended"
        retries += 1
        await asyncio.sleep(backoff.delay(retries))


async def _session(config: CaptureConfig, clock: MonotonicClock) -> AsyncIterator[Event]:
    """One capture() whose generator is always closed, so its connection is too."""
    stream = capture(config, clock=clock)
    try:
        async for event in stream:
            yield event
    finally:
        await stream.aclose()


__all__ = [
    "RETRYABLE",
    "Backoff",
    "CaptureError",
    "MonotonicClock",
    "capture",
    "capture_with_reconnect",
]
