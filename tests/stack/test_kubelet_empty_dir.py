"""An emptyDir with a sizeLimit is a tmpfs of that size on the local kubelet.

So a pod that fills it sees ENOSPC, as on a full node disk; the volume keeps its
content across container restarts like the kubelet's emptyDir, and is unmounted
when the pod goes. An emptyDir without a limit stays a plain host directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Its module-scoped cluster (control plane + kubelet) is started again for this module.
from tests.stack.test_kubelet import NAMESPACE, Cluster, cluster, wait_for  # noqa: F401

pytestmark = pytest.mark.stack

SCRIPT = """
if [ ! -e /limited/ran-before ]; then touch /limited/ran-before; exit 3; fi
echo restarted-with-volume
stat -c 'owner %u %g %a' /limited
if head -c 4194304 /dev/zero > /limited/big 2>/dev/null; then echo limited-took-4MiB
else echo limited-full; fi
head -c 4194304 /dev/zero > /plain/big && echo plain-took-4MiB
df -B1 --output=size /limited | tail -n 1 | tr -d ' ' | sed 's/^/size /'
echo done
exec sleep 300
"""


def _log_lines(running: Cluster, name: str) -> list[str]:
    try:
        return running.log(name).splitlines()
    except FileNotFoundError:  # not started yet
        return []


def _mounts_below(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)]


def test_size_limited_empty_dir_is_a_tmpfs_that_fills_and_goes_with_the_pod(
        cluster: Cluster):  # noqa: F811 - the imported fixture
    cluster.create_pod("limited", [{
        "name": "main", "image": "process.local/unused", "command": ["sh", "-c", SCRIPT],
        "volumeMounts": [{"name": "limited", "mountPath": "/limited"},
                         {"name": "plain", "mountPath": "/plain"}],
    }], restartPolicy="OnFailure", terminationGracePeriodSeconds=1,
        volumes=[{"name": "limited", "emptyDir": {"sizeLimit": "1Mi"}},
                 {"name": "plain", "emptyDir": {}}],
        securityContext={"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                         "fsGroup": 65532})

    wait_for(lambda: "done" in _log_lines(cluster, "limited"), 30,
             "the pod to fill its volumes", cluster)
    lines = _log_lines(cluster, "limited")
    pod = cluster.pod("limited")
    # The first run's marker survived the restart: the tmpfs lives as long as the pod.
    assert pod.status.container_statuses[0].restart_count == 1
    assert "restarted-with-volume" in lines, lines
    assert "owner 65532 65532 2777" in lines, lines   # as a plain emptyDir: the pod's
    assert "limited-full" in lines, lines              # ENOSPC at 1 MiB
    assert "size 1048576" in lines, lines
    assert "plain-took-4MiB" in lines, lines           # no limit, no tmpfs

    volumes = (cluster.kubelet.workdir / "pods"
               / f"{NAMESPACE}_limited_{pod.metadata.uid}" / "volumes")
    assert os.path.ismount(volumes / "limited")
    assert not os.path.ismount(volumes / "plain")

    cluster.kubectl("delete", "pod", "limited", "-n", NAMESPACE, "--timeout=30s")
    wait_for(lambda: not volumes.exists(), 15, "the pod's volumes to be removed", cluster)
    assert _mounts_below(volumes.parent) == []
