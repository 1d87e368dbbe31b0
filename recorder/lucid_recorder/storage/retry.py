"""Retry policy for object store calls: exponential backoff with jitter.

Pure: time, sleeping and randomness are parameters, so the schedule is
unit-tested without waiting. Each attempt is bounded by the HTTP client's
timeouts (connect 5 s, read 30 s), not here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lucid_recorder.storage.errors import TransientStorageError

T = TypeVar("T")

# Less time than this before the deadline is not worth one more attempt.
MIN_LAST_WAIT = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    # None retries until the deadline (or forever): losing a chunk is worse
    # than waiting, and the pipeline reports Degraded meanwhile.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_delay <= 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 < initial_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def ceiling(self, attempt: int) -> float:
        """Backoff ceiling after failed attempt number `attempt` (1-based)."""
        # Cap the exponent first: multiplier ** 1000 would overflow a float.
        exponent = min(attempt - 1, 64)
        return min(self.max_delay, self.initial_delay * self.multiplier**exponent)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """'Equal jitter': half the ceiling fixed, half random.

        Full jitter can pick near-zero waits several times in a row and hammer
        a store that is just coming back; half fixed never does, and the random
        half still spreads many recorders apart after a shared outage.
        """
        cap = self.ceiling(attempt)
        return cap / 2 + rand() * cap / 2


class RetriesExhausted(TransientStorageError):
    """Gave up on a transient error (attempt limit or deadline); `__cause__` is the last one."""


def retry_call(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    retryable: Callable[[BaseException], bool] = lambda e: isinstance(e, TransientStorageError),
    deadline: float | Callable[[], float | None] | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run `call` until it succeeds; non-retryable errors propagate at once.

    `deadline` is a `clock()` value, or a function returning the current one (None:
    none yet), read after each failed attempt: a backoff that would sleep past it is cut
    to end at it, for one last attempt there, and no retry starts after it (a graceful
    shutdown has a grace period, which begins while a retry is under way).
    `on_retry(attempt, error, delay)` lets the caller count retries and report Degraded.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            if not retryable(exc):
                raise
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                raise RetriesExhausted(f"gave up after {attempt} attempts: {exc}") from exc
            wait = policy.delay(attempt, rand)
            limit = deadline() if callable(deadline) else deadline
            if limit is not None and clock() + wait > limit:
                # The time up to the deadline is still used: one last attempt at it,
                # rather than giving up while a backoff would overshoot it.
                wait = limit - clock()
                if wait < MIN_LAST_WAIT:
                    raise RetriesExhausted(
                        f"gave up after {attempt} attempts (deadline): {exc}"
                    ) from exc
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
