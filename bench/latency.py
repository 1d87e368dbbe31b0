"""Latency from a screen update to a durable object, p50 and p99, per chunking setting.

Each update is stamped when it enters the pipeline (as the capture source stamps it
when decoded) and gets the time its chunk's upload was acknowledged by MinIO (a wrapped
upload_pending on_uploaded). Runs the real `Recording` with:

- the recorded busy workload replayed in real time, at maxSeconds 1 and 5;
- at the defaults (maxSeconds 60, maxBytes 8 MiB): the live capture of the rss run when
  that suite ran, else the same replay;
- an idle desktop (a clock-sized update a second, synthetic) at the defaults: the busy
  workload fills 8 MiB of segment within seconds, so only an idle session shows the
  60 s time limit at work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench.common import Context, log, make_spec
from bench.recorder_run import LatencyProbe, bucket_name, build_recording, replay_paced
from lucid_recorder.rdp import events as ev

IDLE_RECT = 96  # pixels square: about what xclock redraws each second


async def idle_desktop(width: int = 1024, height: int = 768) -> AsyncIterator[ev.Event]:
    """A still desktop with one small area changing once a second."""
    yield ev.Connected(time.monotonic_ns(), width, height, 32, "ab" * 32, ev.TlsMode.FINGERPRINT)
    yield ev.Rect(time.monotonic_ns(), 0, 0, width, height, bytes([0x3a]) * (width * height * 3))
    tick = 0
    while True:
        await asyncio.sleep(1.0)
        tick += 1
        # A hand sweeping round: a different row of the rectangle is dark each second.
        row = tick % IDLE_RECT
        pixels = bytearray(b"\xf0" * (IDLE_RECT * IDLE_RECT * 3))
        pixels[row * IDLE_RECT * 3:(row + 1) * IDLE_RECT * 3] = bytes(IDLE_RECT * 3)
        yield ev.Rect(time.monotonic_ns(), width - IDLE_RECT - 20, 20, IDLE_RECT, IDLE_RECT,
                      bytes(pixels))


def measure(ctx: Context, name: str, source: Callable[[], AsyncIterator[ev.Event]],
            seconds: float, max_seconds: int | None) -> dict[str, Any]:
    minio = ctx.minio()
    spec = make_spec(minio.endpoint, bucket_name("bench-latency"), max_seconds=max_seconds)
    recording = build_recording(ctx.workdir / f"latency-{name}", spec, minio.access_key,
                                minio.secret_key, f"latency-{name}")
    probe = LatencyProbe()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        with probe.patched():
            await recording.run(probe.watch(source()), stop)

    log(f"latency: {name}, {seconds:g} s")
    asyncio.run(main())
    return {**probe.summary(recording), "seconds": seconds,
            "max_seconds": spec.chunking.max_seconds, "max_bytes": spec.chunking.max_bytes}


def run(ctx: Context) -> dict[str, Any]:
    events = ctx.recorded().events
    short = 15.0 if ctx.quick else 30.0
    settings: dict[str, Any] = {}
    for max_seconds in (1, 5):
        settings[f"busy, maxSeconds {max_seconds}"] = {
            **measure(ctx, f"busy-{max_seconds}s", lambda: replay_paced(events), short,
                      max_seconds),
            "source": "recorded workload replayed in real time"}
    live = ctx.shared.get("rss_latency")
    if live is not None:
        settings["busy, defaults (60 s / 8 MiB)"] = {**live, "max_seconds": 60,
                                                     "max_bytes": 8 * 1024 * 1024}
    else:
        settings["busy, defaults (60 s / 8 MiB)"] = {
            **measure(ctx, "busy-default", lambda: replay_paced(events),
                      60.0 if ctx.quick else 150.0, None),
            "source": "recorded workload replayed in real time"}
    settings["idle, defaults (60 s / 8 MiB)"] = {
        **measure(ctx, "idle-default", idle_desktop, 20.0 if ctx.quick else 125.0, None),
        "source": "synthetic idle desktop (one 96x96 update a second)"}
    return {"settings": settings}
