"""Parent side of bench.child: start it, drive the workload while it records, stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.common import REPO, Context

CONNECT_TIMEOUT_S = 90.0
FINISH_TIMEOUT_S = 300.0


@dataclass
class ChildRun:
    result: dict[str, Any]
    # Whole-process CPU of the child from the kernel (imports and connecting included).
    rusage_cpu_s: float
    # (seconds since the child started, RSS bytes), one sample a second, when asked for.
    rss: list[tuple[float, int]] = field(default_factory=list)
    connected_at_s: float = 0.0
    stopped_at_s: float = 0.0


def child_env(ctx: Context, with_minio: bool) -> dict[str, str]:
    desktop = ctx.desktop()
    env = {
        **os.environ,
        "BENCH_RDP_PORT": str(desktop.rdp_port),
        "BENCH_RDP_USER": desktop.username,
        "BENCH_RDP_PASSWORD": desktop.password,
        "BENCH_RDP_FINGERPRINT": desktop.tls_fingerprint_sha256,
        "BENCH_WIDTH": str(desktop.width),
        "BENCH_HEIGHT": str(desktop.height),
    }
    if with_minio:
        minio = ctx.minio()
        env |= {"BENCH_MINIO_ENDPOINT": minio.endpoint, "BENCH_MINIO_ACCESS": minio.access_key,
                "BENCH_MINIO_SECRET": minio.secret_key}
    return env


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, started: float) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.started = started
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        tick = self.started
        while not self.done.is_set():
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - self.started, rss))
            # Fixed ticks, not sleep(1) after the sample: no drift over ten minutes.
            tick += 1.0
            self.done.wait(max(0.0, tick - time.monotonic()))


def run_child(ctx: Context, mode: str, depth: int, seconds: float, workdir: Path,
              sample_rss: bool = False) -> ChildRun:
    """Run bench.child `mode` while the desktop runs its workload for `seconds`."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "result.json"
    argv = [sys.executable, "-m", "bench.child", mode, "--depth", str(depth),
            "--workdir", str(workdir), "--out", str(out)]
    env = child_env(ctx, with_minio=mode == "record")
    started = time.monotonic()
    with open(workdir / "child.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log)
    sampler = _RssSampler(proc.pid, started) if sample_rss else None
    if sampler is not None:
        sampler.start()
    connected = threading.Event()

    def watch_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == b"CONNECTED":
                connected.set()

    threading.Thread(target=watch_stdout, daemon=True).start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError(f"bench.child {mode} did not connect; see {workdir}/child.log")
        connected_at = time.monotonic() - started
        ctx.desktop().run_workload(seconds)
        stopped_at = time.monotonic() - started
        proc.send_signal(signal.SIGTERM)
        status, rusage = wait_child(proc, FINISH_TIMEOUT_S)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    finally:
        if sampler is not None:
            sampler.done.set()
            sampler.join()
    if status != 0:
        raise RuntimeError(f"bench.child {mode} exited with {status}; see {workdir}/child.log")
    return ChildRun(json.loads(out.read_text()), rusage.ru_utime + rusage.ru_stime,
                    sampler.samples if sampler is not None else [], connected_at, stopped_at)


def wait_child(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any]:
    """Reap the child with wait4, which also returns its own CPU usage (no other child's)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"child {proc.pid} did not finish within {timeout:g} s")
        time.sleep(0.05)
