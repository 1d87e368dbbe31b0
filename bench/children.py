"""Parent side of bench.child: start it, drive the workload while it records, stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.common import REPO, Context
from lucid_devstack.desktop import Desktop

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


def child_env(ctx: Context, with_minio: bool, desktop: Desktop | None = None) -> dict[str, str]:
    """The child's BENCH_* coordinates: `desktop` (default: the context's first) and MinIO."""
    desktop = desktop or ctx.desktop()
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


class Child:
    """One bench.child process: start, wait for CONNECTED, stop with SIGTERM, collect.

    Several can run at once (the concurrency suite); run_child drives one alone.
    """

    def __init__(self, ctx: Context, mode: str, depth: int, workdir: Path, *,
                 desktop: Desktop | None = None, sample_rss: bool = False,
                 extra_args: tuple[str, ...] = (),
                 extra_env: Mapping[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.workdir = workdir
        self.out = workdir / "result.json"
        argv = [sys.executable, "-m", "bench.child", mode, "--depth", str(depth),
                "--workdir", str(workdir), "--out", str(self.out), *extra_args]
        # extra_env, e.g. LUCID_NATIVE=0: the same child on the pure-Python reference.
        env = child_env(ctx, with_minio=mode == "record", desktop=desktop) | dict(extra_env or {})
        self.started = time.monotonic()
        with open(workdir / "child.log", "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                         stderr=log)
        self.sampler = _RssSampler(self.proc.pid, self.started) if sample_rss else None
        if self.sampler is not None:
            self.sampler.start()
        self.connected = threading.Event()
        self.connected_at_s = 0.0
        self.stopped_at_s = 0.0
        threading.Thread(target=self._watch_stdout, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _watch_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == b"CONNECTED":
                self.connected_at_s = time.monotonic() - self.started
                self.connected.set()

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        # Polled, so a child that dies before connecting fails at once, not at the timeout.
        while not self.connected.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench.child {self.mode} exited with "
                                   f"{self.proc.returncode} before connecting; "
                                   f"see {self.workdir}/child.log")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"bench.child {self.mode} did not connect; "
                                   f"see {self.workdir}/child.log")

    def stop(self, timeout: float = FINISH_TIMEOUT_S) -> ChildRun:
        """SIGTERM, reap, and read the result; the child is killed if that fails."""
        self.terminate()
        return self.finish(timeout)

    def terminate(self) -> None:
        """Ask the child to finish its recording (SIGTERM); finish() collects it."""
        self.stopped_at_s = time.monotonic() - self.started
        # os.kill, not Popen.send_signal: that polls first, and a child that already
        # exited would be reaped there, leaving wait_child no rusage to read. Until
        # wait_child reaps it, its pid cannot be reused.
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def finish(self, timeout: float = FINISH_TIMEOUT_S) -> ChildRun:
        """Reap a terminated child and read its result; it is killed if that fails."""
        try:
            status, rusage = wait_child(self.proc, timeout)
        finally:
            self.kill()
        if status != 0:
            raise RuntimeError(f"bench.child {self.mode} exited with {status}; "
                               f"see {self.workdir}/child.log")
        return ChildRun(json.loads(self.out.read_text()), rusage.ru_utime + rusage.ru_stime,
                        self.sampler.samples if self.sampler is not None else [],
                        self.connected_at_s, self.stopped_at_s)

    def kill(self) -> None:
        """Make sure the process is gone and the RSS sampler has stopped; idempotent."""
        if self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.sampler is not None:
            self.sampler.done.set()
            if self.sampler.is_alive():
                self.sampler.join()


def run_child(ctx: Context, mode: str, depth: int, seconds: float, workdir: Path,
              sample_rss: bool = False, extra_args: tuple[str, ...] = (),
              extra_env: Mapping[str, str] | None = None) -> ChildRun:
    """Run bench.child `mode` while the desktop runs its workload for `seconds`."""
    child = Child(ctx, mode, depth, workdir, sample_rss=sample_rss, extra_args=extra_args,
                  extra_env=extra_env)
    try:
        child.wait_connected()
        ctx.desktop().run_workload(seconds)
        return child.stop()
    finally:
        child.kill()


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
