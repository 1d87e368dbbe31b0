"""Runs the real `lucid-operator` console script against a local stack, as a process.

Its recorder pods run from the recorder image (localhost/lucid-recorder, built on demand by
lucid_devstack.images) in containers, unless a test picks the stand-in recorder, which runs
as a host process (an image under process.local/).
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lucid_devstack import images
from lucid_devstack.kubelet_spec import PROCESS_IMAGE_PREFIX
from lucid_devstack.proc import Proc, free_port, http_ok
from lucid_devstack.stack import Stack, venv_bin

# The operator's pods run this instead of the real recorder in lifecycle tests, as a host
# process: no image holds the devstack.
STANDIN_RECORDER = "python,-m,lucid_devstack.standin_recorder"
STANDIN_IMAGE = f"{PROCESS_IMAGE_PREFIX}lucid-standin-recorder"
STANDIN_SETTINGS = {"LUCID_RECORDER_IMAGE": STANDIN_IMAGE,
                    "LUCID_RECORDER_COMMAND": STANDIN_RECORDER}
# Overrides the real recorder's image for every OperatorProcess: e.g.
# process.local/lucid-recorder runs the venv's lucid-recorder as a host process, to compare
# the container runtime against the process mode (docs/containers.md).
RECORDER_IMAGE_ENV = "LUCID_DEVSTACK_RECORDER_IMAGE"


def default_recorder_image() -> str:
    return os.environ.get(RECORDER_IMAGE_ENV) or images.image_name("recorder")


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
            "LUCID_RECORDER_IMAGE": default_recorder_image(),
            # Its signing key Secret and public key ConfigMap go where the stack has a
            # namespace from the start; every operator of one stack shares that key.
            "LUCID_OPERATOR_NAMESPACE": "default",
            **self.settings,
        }
        if not env["LUCID_RECORDER_IMAGE"].startswith(PROCESS_IMAGE_PREFIX):
            images.ensure_images(["recorder"])  # a no-op when the image is current
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
