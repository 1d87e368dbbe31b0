"""The local kubelet's container runtime: a pod's container as an OCI container (podman).

Every container whose image is not under PROCESS_IMAGE_PREFIX runs from its image through
`podman run` (runc, host network, the pod's volumes bind-mounted, its securityContext as
podman flags), attached, so that the kubelet keeps one child process per container as in
process mode: its exit is the container's exit, and SIGTERM is proxied into the container.
Images are never pulled: an image missing from local storage is ErrImageNeverPull, as with
`imagePullPolicy: Never` on a real node. `python -m lucid_devstack.images` builds ours.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from lucid_devstack import podman
from lucid_devstack.kubelet_spec import PROCESS_IMAGE_PREFIX, Identity, Mount, quantity_bytes
from lucid_devstack.proc import StackError

log = logging.getLogger("lucid.kubelet")

CONTAINER_ID_PREFIX = "podman://"
# podman run's own exit code when it failed before the container's program ran.
PODMAN_FAILED = 125
IMAGE_NEVER_PULL = "ErrImageNeverPull"
# Names podman itself reads from its environment: a pod env var of that name would
# reconfigure the runtime instead of reaching the container.
_RUNTIME_ENV = re.compile(r"^(CONTAINERS_|PODMAN_|BUILDAH_|STORAGE_|REGISTRY_AUTH_FILE$|TMPDIR$)")
PODMAN_TIMEOUT_S = 60


def runs_as_process(image: str) -> bool:
    return image.startswith(PROCESS_IMAGE_PREFIX)


def container_name(pod: Mapping[str, Any], container: str, attempt: int) -> str:
    """The real kubelet's docker-era name: k8s_<container>_<pod>_<ns>_<uid>_<attempt>."""
    meta = pod["metadata"]
    return f"k8s_{container}_{meta['name']}_{meta['namespace']}_{meta['uid']}_{attempt}"


def cpu_quantity(text: str | int) -> str:
    """A CPU quantity ("500m", "2") as podman's --cpus value."""
    value = str(text).strip()
    amount = Fraction(value[:-1]) / 1000 if value.endswith("m") else Fraction(value)
    return f"{float(amount):g}"


def check_env_names(env: Mapping[str, str]) -> None:
    clashing = sorted(name for name in env if _RUNTIME_ENV.match(name))
    if clashing:
        raise StackError(f"env {', '.join(clashing)}: podman reads these names itself, so the "
                         "local kubelet cannot pass them into a container")


def run_argv(*, name: str, image: str, label: str, command: Sequence[str] | None,
             args: Sequence[str], env_names: Iterable[str], mounts: Iterable[Mount],
             ident: Identity, working_dir: str | None,
             resources: Mapping[str, Any]) -> list[str]:
    """`podman run` for one container; the env values travel in podman's environment."""
    flags = ["run", "--rm", "--name", name, "--label", f"{podman.KUBELET_LABEL}={label}",
             "--pull", "never", "--network", "host", "--log-driver", "none",
             "--sig-proxy=true", *podman.ULIMITS]
    if ident.uid is not None:
        flags += ["--user", f"{ident.uid}:{ident.gid}" if ident.gid is not None
                  else str(ident.uid)]
    for group in ident.groups:
        flags += ["--group-add", str(group)]
    if ident.read_only_root:
        # Kubernetes adds no tmpfs on /tmp or /run to a read-only root; neither do we.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if ident.caps is None:
        flags.append("--privileged")
    else:
        flags += ["--cap-drop", "all", *(f"--cap-add={cap}" for cap in ident.caps)]
    if ident.no_new_privs:
        flags += ["--security-opt", "no-new-privileges"]
    for mount in mounts:
        for path in (str(mount.source), mount.target):
            if ":" in path or "," in path:
                raise StackError(f"mount path {path!r}: ':' and ',' cannot pass through "
                                 "podman's --volume")
        flags += ["--volume", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"
                  ",rbind"]
    limits = resources.get("limits") or {}
    if limits.get("memory") is not None:
        flags += ["--memory", str(quantity_bytes(limits["memory"]))]
    if limits.get("cpu") is not None:
        flags += ["--cpus", cpu_quantity(limits["cpu"])]
    if working_dir:
        flags += ["--workdir", working_dir]
    for env_name in env_names:
        flags += ["--env", env_name]
    if command:
        flags += ["--entrypoint", json.dumps(list(command))]
    return podman.argv(*flags, image, *args)


def image_user(image: str) -> str:
    done = podman.run(["image", "inspect", "--format", "{{.Config.User}}", image],
                      timeout=PODMAN_TIMEOUT_S)
    return done.stdout.decode().strip()


def image_uid(image: str) -> int | None:
    """The numeric user an image runs as; None when it names no user (root).

    Like the real kubelet, a non-numeric USER cannot be checked against runAsNonRoot.
    """
    user = image_user(image).partition(":")[0]
    if not user:
        return None
    if not user.isdigit():
        raise ValueError(f'image has non-numeric user ({user}), cannot verify user is '
                         'non-root')
    return int(user)


def kill(name: str) -> None:
    done = podman.run(["kill", "--signal", "KILL", name], timeout=PODMAN_TIMEOUT_S,
                      check=False)
    if done.returncode != 0:
        log.debug("podman kill %s: %s", name, done.stderr.decode(errors="replace").strip())


def remove(name: str) -> None:
    podman.run(["rm", "--force", "--ignore", "--time", "0", name], timeout=PODMAN_TIMEOUT_S,
               check=False)


def remove_all(label: str) -> list[str]:
    """Remove every container the kubelet with this label left (after a crash)."""
    listed = podman.run(["ps", "--all", "--quiet", "--filter",
                         f"label={podman.KUBELET_LABEL}={label}"],
                        timeout=PODMAN_TIMEOUT_S, check=False)
    ids = listed.stdout.decode().split()
    if ids:
        podman.run(["rm", "--force", "--time", "0", *ids], timeout=PODMAN_TIMEOUT_S,
                   check=False)
    return ids


def main_pid(name: str) -> int:
    """The host PID of a running container's main process."""
    done = podman.run(["inspect", "--format", "{{.State.Pid}}", name],
                      timeout=PODMAN_TIMEOUT_S)
    return int(done.stdout.decode().strip())


def exec_argv(name: str, ident: Identity, command: Sequence[str]) -> list[str]:
    """An exec probe: the command inside the running container, as its user."""
    flags = ["exec"]
    if ident.uid is not None:
        flags += ["--user", str(ident.uid)]
    return podman.argv(*flags, name, *command)
