"""podman as this sandbox needs it: runc, cgroupfs, file events, and rlimits at 1024.

crun and runc both fail here with `setrlimit ... Operation not permitted` when a container
asks for the default rlimits (above 1024), and no systemd or journald runs; every podman
call of the devstack therefore goes through these flags.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from lucid_devstack.proc import StackError

GLOBAL_FLAGS = ("--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend",
                "file")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
# Label on every container the local kubelet starts: a teardown after a crash finds them.
KUBELET_LABEL = "dev.lucid.kubelet"


def binary() -> str:
    found = shutil.which("podman", path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise StackError("podman is not installed (Debian package podman; "
                         "devstack/bootstrap.sh installs it)")
    return found


def argv(*args: str) -> list[str]:
    return [binary(), *GLOBAL_FLAGS, *args]


def run(args: Sequence[str], timeout: float, check: bool = True,
        input_: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(argv(*args), capture_output=True, timeout=timeout, check=False,
                          input=input_)
    if check and done.returncode != 0:
        raise StackError(f"podman {' '.join(args[:2])} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()[-2000:]}")
    return done


def image_label(image: str, label: str) -> str | None:
    """A label of a local image, or None when there is no such image."""
    done = run(["image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', image],
               timeout=60, check=False)
    if done.returncode != 0:
        return None
    value = done.stdout.decode().strip()
    return None if value in ("", "<no value>") else value


def image_exists(image: str) -> bool:
    return run(["image", "exists", image], timeout=60, check=False).returncode == 0
