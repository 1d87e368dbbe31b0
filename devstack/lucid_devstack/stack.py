"""The whole local stack in one object, used by the pytest fixtures and by the demo.

Everything listens on 127.0.0.1 on free ports and keeps its state and logs in
one work directory; stop() leaves no process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lucid_devstack import build, paths
from lucid_devstack.desktop import Desktop
from lucid_devstack.kube import ControlPlane
from lucid_devstack.kubelet import LocalKubelet
from lucid_devstack.minio import MinioServer
from lucid_devstack.proc import StackError, tail

KUBECTL_TIMEOUT_S = 60.0


def venv_bin() -> Path:
    """Where the dev environment's console scripts (kubectl, lucid-*) live."""
    return Path(sys.executable).parent


@dataclass
class Stack:
    workdir: Path
    kube: ControlPlane = field(init=False)
    minio: MinioServer = field(init=False)
    desktop: Desktop = field(init=False)
    kubelet: LocalKubelet = field(init=False)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path | None = None) -> Stack:
        root = workdir or Path(tempfile.mkdtemp(prefix="lucid-stack-"))
        return cls(root)

    def start(self) -> Stack:
        build.ensure_built()
        started = time.monotonic()
        self.kube = ControlPlane(self.workdir / "kube")
        self.minio = MinioServer(self.workdir / "minio")
        self.desktop = Desktop(self.workdir / "desktop")
        try:
            # The three are independent; starting them together saves most of a minute.
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = {
                    "kube": pool.submit(self._timed, "kube", self.kube.start),
                    "minio": pool.submit(self._timed, "minio", self.minio.start),
                    "desktop": pool.submit(self._timed, "desktop", self.desktop.start),
                }
                for future in futures.values():
                    future.result()
            self.kubelet = LocalKubelet(self.kube, self.workdir / "kubelet")
            self._timed("kubelet", self.kubelet.start)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def _timed(self, name: str, start: Callable[[], object]) -> None:
        began = time.monotonic()
        start()
        self.timings[name] = time.monotonic() - began

    def stop(self) -> None:
        """Stop every component that started, kubelet (and its pods) first."""
        errors: list[str] = []
        for name in ("kubelet", "kube", "minio", "desktop"):
            component = self.__dict__.get(name)
            if component is None:
                continue
            try:
                component.stop()
            except (StackError, OSError, subprocess.SubprocessError) as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise StackError("teardown failed: " + "; ".join(errors))

    def logs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for log in sorted(self.workdir.rglob("*.log")):
            found[str(log.relative_to(self.workdir))] = log
        return found

    def log_report(self, lines: int = 30) -> str:
        return "\n\n".join(f"----- {name} -----\n{tail(path, lines)}"
                           for name, path in self.logs().items())

    def env(self) -> dict[str, str]:
        """Environment for a kubectl, helm or operator started against this stack."""
        return {
            "KUBECONFIG": str(self.kube.kubeconfig),
            "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True,
                timeout: float = KUBECTL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(venv_bin() / "kubectl"), "--kubeconfig", str(self.kube.kubeconfig), *args],
            input=input_text, capture_output=True, text=True, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise StackError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
        return done

    def helm(self) -> Path:
        return paths.binary("helm")
