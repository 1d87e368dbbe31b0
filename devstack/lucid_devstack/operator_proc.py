"""Runs the real `lucid-operator` console script against a local stack, as a process."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lucid_devstack.proc import Proc, free_port, http_ok
from lucid_devstack.stack import Stack, venv_bin

# The operator's pods run this instead of the real recorder in lifecycle tests.
STANDIN_RECORDER = "python,-m,lucid_devstack.standin_recorder"


@dataclass
class OperatorProcess:
    stack: Stack
    log: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    health_port: int = 0
    metrics_port: int = 0
    proc: Proc | None = None

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        # Kept with the stack's logs, so a failing test shows its tail too.
        self.log = self.log or self.stack.workdir / "logs" / f"operator-{free_port()}.log"
        self.health_port = self.health_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        env = {
            **self.stack.env(),
            "LUCID_STANDALONE": "true",
            "LUCID_LOG_FORMAT": "json",
            "LUCID_HEALTH_PORT": str(self.health_port),
            "LUCID_METRICS_PORT": str(self.metrics_port),
            **self.settings,
        }
        self.proc = Proc("lucid-operator", [str(venv_bin() / "lucid-operator")], self.log,
                         env=env).start()
        self.proc.wait_until(
            lambda: http_ok("127.0.0.1", self.health_port, "/healthz", None),
            timeout=timeout, what="/healthz ok")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=15)

    def kill(self) -> None:
        """SIGKILL, as a crashed or evicted operator would die."""
        if self.proc is not None:
            self.proc.kill()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as response:
            return response.read().decode()
