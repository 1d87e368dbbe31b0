"""Child processes of the stack: each in its own process group, each with a log file."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A stack component failed to build, start or answer."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Proc:
    """One long-running component, logging to `log`."""

    name: str
    argv: Sequence[str]
    log: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with self.log.open("ab") as out:
            # A new session makes the child a process-group leader, so stop()
            # reaches everything it spawned (Xvnc's session, xrdp's children).
            self.popen = subprocess.Popen(
                list(self.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it holds; fail with the log tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self.popen.returncode if self.popen else None
                raise StackError(f"{self.name} exited (code {code}) before {what}; "
                                 f"log {self.log}:\n{tail(self.log)}")
            if ready():
                return
            time.sleep(0.2)
        raise StackError(f"{self.name}: no {what} after {timeout:.0f}s; "
                         f"log {self.log}:\n{tail(self.log)}")

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        self.wait_until(lambda: port_open(port), timeout, f"listener on 127.0.0.1:{port}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        if self.popen is None:
            return
        pgid = self.popen.pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # Members of the group may outlive its leader (a forked daemon child).
        _signal_group(pgid, signal.SIGKILL)

    def kill(self) -> None:
        if self.popen is not None:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # The whole group is already gone: nothing left to stop.


def run(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None,
        cwd: Path | None = None) -> str:
    """Run a short command; raise StackError with its output when it fails."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{argv[0]} timed out after {timeout}s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        raise StackError(
            f"{' '.join(argv)} failed with code {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def http_ok(host: str, port: int, path: str, context: ssl.SSLContext | None) -> bool:
    """True when GET `path` answers 200; False while the server is not up yet."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(host, port, timeout=2)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=2, context=context)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
