"""Build (once) every binary the stack runs, from pinned Go modules.

Each binary lands in the cache under a versioned name, so a second run does
nothing and CI's fresh clone on the same machine reuses it. Usage:

    python -m lucid_devstack.build
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lucid_devstack import paths, versions
from lucid_devstack.proc import StackError, run

# Generous: a cold kube-apiserver build on a 2-core machine takes many minutes.
BUILD_TIMEOUT_S = 3600.0


def _kube_ldflags() -> str:
    major, minor = versions.KUBERNETES.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    # Without these the binaries report v0.0.0-master, which kubectl flags as skew.
    return " ".join([
        "-s", "-w",
        f"-X {pkg}.gitVersion={versions.KUBERNETES}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
    ])


def _go_env(gobin: Path | None = None) -> dict[str, str]:
    env = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def _build_kube(out: Path) -> None:
    run(
        ["go", "build", "-trimpath", f"-ldflags={_kube_ldflags()}", "-o", str(out),
         "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager"],
        timeout=BUILD_TIMEOUT_S, env=_go_env(), cwd=paths.go_module_dir("kube"),
    )
    _install(out / "kube-apiserver", "kube-apiserver")
    _install(out / "kube-controller-manager", "kube-controller-manager")


def _build_etcd(out: Path) -> None:
    run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "etcd"),
         "go.etcd.io/etcd/server/v3"],
        timeout=BUILD_TIMEOUT_S, env=_go_env(), cwd=paths.go_module_dir("etcd"),
    )
    _install(out / "etcd", "etcd")


def _go_install(module: str, version: str, binary: str, out: Path) -> None:
    run(["go", "install", "-trimpath", "-ldflags=-s -w", f"{module}@{version}"],
        timeout=BUILD_TIMEOUT_S, env=_go_env(gobin=out), cwd=out)
    _install(out / binary, binary)


def _install(built: Path, name: str) -> None:
    target = paths.binary(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".partial")
    shutil.copy2(built, staged)
    # Rename last so that a half-copied file never looks built.
    os.replace(staged, target)


@dataclass(frozen=True)
class Step:
    name: str
    binaries: tuple[str, ...]
    build: Callable[[Path], None]

    def done(self) -> bool:
        return all(paths.binary(b).exists() for b in self.binaries)


STEPS = (
    Step("etcd", ("etcd",), _build_etcd),
    Step("kube-apiserver + kube-controller-manager",
         ("kube-apiserver", "kube-controller-manager"), _build_kube),
    Step("minio", ("minio",),
         lambda out: _go_install("github.com/minio/minio", versions.MINIO, "minio", out)),
    Step("helm", ("helm",),
         lambda out: _go_install("helm.sh/helm/v3/cmd/helm", versions.HELM, "helm", out)),
)


@contextmanager
def _build_lock() -> Iterator[None]:
    """One builder at a time: a test run and a demo started together share the cache."""
    lock_path = paths.cache_root() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing() -> list[Step]:
    return [step for step in STEPS if not step.done()]


def ensure_built() -> None:
    """Build what is missing, printing progress; a no-op when everything is cached."""
    if shutil.which("go") is None:
        raise StackError("Go is not on PATH; the stack builds its binaries from Go modules")
    with _build_lock():
        todo = missing()
        for index, step in enumerate(todo, start=1):
            print(f"[lucid build {index}/{len(todo)}] {step.name}: building "
                  f"(cold builds take minutes on 2 cores)...", flush=True)
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="lucid-build-") as out:
                step.build(Path(out))
            print(f"[lucid build {index}/{len(todo)}] {step.name}: done in "
                  f"{time.monotonic() - started:.0f}s", flush=True)
    print(f"[lucid build] all binaries present in {paths.bin_dir()}", flush=True)


def main() -> int:
    try:
        ensure_built()
    except StackError as exc:
        print(f"[lucid build] FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
