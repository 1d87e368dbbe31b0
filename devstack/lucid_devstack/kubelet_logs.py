"""Container logs as the kubelet serves them: which run, which lines, with what timestamps.

The local kubelet appends every run of a container to one file (stdout and stderr
together, no per-line metadata) and remembers where each run began. This module turns
that into what `kubectl logs` asks for (the query of /containerLogs): the current or the
previous run, `sinceTime`/`sinceSeconds`, `tailLines`, `timestamps`, `limitBytes`.

A real kubelet's runtime stamps each line as it is written. Here the lines are written by
the container straight into the file, so `LogIndex` stamps bytes when it first sees them
(the server polls every log a few times a second): a line's timestamp is when it reached
the file, to within that interval. Lines already in a file when the index first saw it
get the file's modification time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Kubernetes' RFC3339NanoFixed: always nine fraction digits, as the kubelet prints them.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class LogRequestError(Exception):
    """A request the kubelet answers with an error status and this message as the body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions as the apiserver forwards them to the kubelet (all optional)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since_ns: int | None = None  # from sinceTime or sinceSeconds, as Unix nanoseconds

    @classmethod
    def from_query(cls, query: dict[str, list[str]], now_ns: int | None = None) -> LogOptions:
        """Parse and validate the query; LogRequestError (400/422) says what is wrong."""
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        def boolean(name: str) -> bool:
            value = one(name)
            if value is None or value == "":
                return False
            if value.lower() in ("true", "1"):
                return True
            if value.lower() in ("false", "0"):
                return False
            raise LogRequestError(400, f"{name}={value!r} is not a boolean")

        def integer(name: str, minimum: int) -> int | None:
            value = one(name)
            if value is None:
                return None
            try:
                number = int(value)
            except ValueError:
                raise LogRequestError(400, f"{name}={value!r} is not an integer") from None
            if number < minimum:
                raise LogRequestError(422, f"{name} must be at least {minimum}, not {number}")
            return number

        tail_lines = integer("tailLines", 0)
        since_seconds = integer("sinceSeconds", 1)
        since_time = one("sinceTime")
        if since_seconds is not None and since_time is not None:
            raise LogRequestError(422, "at most one of sinceTime or sinceSeconds may be given")
        since_ns = None
        if since_seconds is not None:
            since_ns = (now_ns if now_ns is not None else time.time_ns()) - since_seconds * 10**9
        elif since_time is not None:
            try:
                since = dt.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
            except ValueError:
                raise LogRequestError(
                    400, f"sinceTime={since_time!r} is not an RFC 3339 time") from None
            if since.tzinfo is None:
                raise LogRequestError(400, f"sinceTime={since_time!r} has no time zone")
            since_ns = int(since.timestamp()) * 10**9 + since.microsecond * 1000
        stream = one("stream")
        if stream not in (None, "All"):
            # One file holds both streams, in the order they were written.
            raise LogRequestError(400, f"the local kubelet keeps stdout and stderr in one "
                                       f"log and cannot return stream {stream!r} alone")
        return cls(follow=boolean("follow"), previous=boolean("previous"),
                   timestamps=boolean("timestamps"), tail_lines=tail_lines,
                   limit_bytes=integer("limitBytes", 1), since_ns=since_ns)


@dataclass(frozen=True)
class ContainerView:
    """What the log server needs to know of one container, read from the pod worker."""

    name: str
    pod: str
    state: str  # waiting | running | terminated
    reason: str  # the waiting reason
    run_offsets: tuple[int, ...]  # where each run's output begins in the log file
    last_terminated: bool  # lastState.terminated names a container that ran


def choose_run(view: ContainerView, previous: bool) -> int:
    """Index of the run whose log is asked for; LogRequestError in the kubelet's words.

    The rules of the kubelet's validateContainerLogStatus: `previous` is the run in
    lastState (the one before the current run, or, while waiting to restart, the one that
    just ended); otherwise the running, the terminated or the last terminated run.
    """
    runs = len(view.run_offsets)
    container, pod = view.name, view.pod
    if previous:
        index = runs - 2 if view.state in ("running", "terminated") else runs - 1
        if not view.last_terminated or index < 0:
            raise LogRequestError(
                400, f'previous terminated container "{container}" in pod "{pod}" not found')
        return index
    if runs and (view.state in ("running", "terminated") or view.last_terminated):
        return runs - 1
    if view.state == "terminated":
        raise LogRequestError(400, f'container "{container}" in pod "{pod}" is terminated')
    reason = view.reason or "ContainerCreating"
    raise LogRequestError(
        400, f'container "{container}" in pod "{pod}" is waiting to start: {reason}')


def run_bounds(view: ContainerView, index: int) -> tuple[int, int | None]:
    """[start, end) of a run in the file; end None: up to the end of the file."""
    start = view.run_offsets[index]
    end = view.run_offsets[index + 1] if index + 1 < len(view.run_offsets) else None
    return start, end


class LogIndex:
    """When each stretch of a log file first appeared: (offset, Unix ns), per file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamps: dict[Path, tuple[list[int], list[int]]] = {}
        self._known: dict[Path, int] = {}

    def observe(self, path: Path) -> int:
        """Stamp whatever the file gained since the last look; returns its size."""
        try:
            info = os.stat(path)
        except OSError:
            return 0  # not written yet (or gone with its pod): nothing to stamp
        with self._lock:
            known = self._known.get(path)
            if known is None or info.st_size < known:
                # New to the index (or rewritten): what is there already is as old as the
                # last write, which is all the file says about it.
                self._stamps[path] = ([0], [info.st_mtime_ns]) if info.st_size else ([], [])
            elif info.st_size > known:
                offsets, times = self._stamps[path]
                offsets.append(known)
                times.append(time.time_ns())
            self._known[path] = info.st_size
            return info.st_size

    def stamp(self, path: Path, offset: int) -> int:
        """When the byte at `offset` appeared (the earliest stamp if it predates them)."""
        with self._lock:
            offsets, times = self._stamps.get(path, ([], []))
            if not times:
                return time.time_ns()
            at = bisect.bisect_right(offsets, offset) - 1
            return times[max(at, 0)]

    def keep_only(self, paths: set[Path]) -> None:
        with self._lock:
            for path in set(self._known) - paths:
                self._known.pop(path, None)
                self._stamps.pop(path, None)


def format_stamp(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return f"{moment.strftime(_TIME_FORMAT)}.{fraction:09d}Z"


def lines_of(data: bytes, base: int) -> Iterator[tuple[int, bytes]]:
    """(file offset, line with its newline) for each line; the last may lack the newline."""
    position = 0
    while position < len(data):
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline + 1
        yield base + position, data[position:end]
        position = end


def render(lines: list[tuple[int, bytes]], stamps: list[int], options: LogOptions) -> bytes:
    """The response body for these lines: since, tail, timestamps (limitBytes is the caller's)."""
    chosen = [(line, stamp) for line, stamp in zip(lines, stamps, strict=True)
              if options.since_ns is None or stamp >= options.since_ns]
    if options.tail_lines is not None:
        chosen = chosen[len(chosen) - options.tail_lines:] if options.tail_lines else []
    out = bytearray()
    for (_, line), stamp in chosen:
        if options.timestamps:
            out += format_stamp(stamp).encode() + b" "
        out += line
    return bytes(out)


def read_range(path: Path, start: int, end: int | None) -> bytes:
    """Bytes [start, end) of the file; end None: to its end."""
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(max(end - start, 0))
    except FileNotFoundError:
        return b""
