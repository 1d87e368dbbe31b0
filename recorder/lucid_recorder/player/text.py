"""How times, sizes and moments are written for people, and read back from the command line."""

from __future__ import annotations

import datetime as dt

NS = 1_000_000_000


def offset(ns: int, *, decimals: int = 3) -> str:
    """Session time as M:SS.mmm (H:MM:SS.mmm past an hour)."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    seconds = ns / NS
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    width = 3 + decimals if decimals else 2
    secs_text = f"{secs:0{width}.{decimals}f}"
    if hours:
        return f"{sign}{int(hours)}:{int(minutes):02}:{secs_text}"
    return f"{sign}{int(minutes)}:{secs_text}"


def wallclock(session_start_unix_ns: int, ns: int) -> str | None:
    """UTC wall-clock time of a session offset, or None when the start time was not recorded."""
    if session_start_unix_ns <= 0:
        return None
    moment = dt.datetime.fromtimestamp((session_start_unix_ns + ns) / NS, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{moment.microsecond // 1000:03}Z"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def parse_time(text: str) -> int:
    """Seconds ("83.5") or clock notation ("1:23.5", "1:02:03") to ns; ValueError if neither."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
        raise ValueError(f"not a time: {text!r} (use seconds, M:SS or H:MM:SS)")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use seconds, M:SS or H:MM:SS)") from None
    seconds = 0.0
    for number in numbers:
        if number < 0 or number != number or number == float("inf"):
            raise ValueError(f"not a time: {text!r}")
        seconds = seconds * 60 + number
    return round(seconds * NS)
