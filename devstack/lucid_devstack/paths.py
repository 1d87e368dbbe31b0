"""Where the stack keeps built binaries: outside the clone, keyed by version.

CI runs in a fresh clone on the same machine, so a cache inside the clone
would make every CI run a cold build.
"""

import os
from pathlib import Path

from lucid_devstack import versions


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lucid"


def bin_dir() -> Path:
    return cache_root() / "bin"


def binary(name: str) -> Path:
    """Path of a built binary; the file name carries the version it was built from."""
    version = {
        "kube-apiserver": versions.KUBERNETES,
        "kube-controller-manager": versions.KUBERNETES,
        "etcd": versions.ETCD,
        "minio": versions.MINIO,
        "helm": versions.HELM,
    }[name]
    return bin_dir() / f"{name}-{version}"


def go_module_dir(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "go" / name
