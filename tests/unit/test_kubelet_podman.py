"""The local kubelet's podman command line, from a pod spec (pure; no podman runs here)."""

from pathlib import Path

import pytest

from lucid_devstack import kubelet_podman, podman
from lucid_devstack.kubelet_spec import Identity, Mount, identity
from lucid_devstack.proc import StackError

POD = {"metadata": {"name": "rec-0", "namespace": "team-a", "uid": "u-1"},
       "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                    "runAsGroup": 65532, "fsGroup": 65532}}}
LOCKED = {"name": "recorder", "securityContext": {
    "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]}}}


def argv(ident: Identity, **overrides) -> list[str]:
    kwargs = {"name": "k8s_recorder_rec-0_team-a_u-1_0", "image": "localhost/lucid-recorder:1",
              "label": "/tmp/w", "command": ["lucid-recorder"], "args": ["--x"],
              "env_names": ["A", "B"],
              "mounts": [Mount(Path("/w/vol/spool"), "/var/spool/lucid", False),
                         Mount(Path("/w/vol/key"), "/etc/lucid/recipient", True)],
              "ident": ident, "working_dir": None,
              "resources": {"limits": {"memory": "512Mi", "cpu": "250m"}}}
    kwargs.update(overrides)
    return kubelet_podman.run_argv(**kwargs)


def test_a_locked_down_container_becomes_podman_flags():
    ident = identity(POD, LOCKED)
    line = argv(ident)
    assert line[:len(podman.GLOBAL_FLAGS) + 4] == [podman.binary(), *podman.GLOBAL_FLAGS, "run",
                                                   "--rm", "--name"]
    text = " ".join(line)
    for flag in ("--pull never", "--network host", "--user 65532:65532", "--group-add 65532",
                 "--read-only --read-only-tmpfs=false", "--cap-drop all",
                 "--security-opt no-new-privileges", "--memory 536870912", "--cpus 0.25",
                 "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024",
                 "--volume /w/vol/spool:/var/spool/lucid:rw,rbind",
                 "--volume /w/vol/key:/etc/lucid/recipient:ro,rbind",
                 "--env A --env B", '--entrypoint ["lucid-recorder"]'):
        assert flag in text, flag
    assert "--cap-add" not in text
    # Env values never reach argv: only their names do.
    assert line[-2:] == ["localhost/lucid-recorder:1", "--x"]


def test_default_capabilities_and_the_images_entrypoint():
    ident = identity({"metadata": POD["metadata"], "spec": {}}, {"name": "c"})
    line = argv(ident, command=None, args=[], resources={})
    assert "--entrypoint" not in line and "--user" not in line and "--read-only" not in line
    assert "--cap-add=chown" in line and "--memory" not in line
    assert line[-1] == "localhost/lucid-recorder:1"


def test_run_as_non_root_accepts_the_images_numeric_user():
    pod = {"metadata": POD["metadata"], "spec": {"securityContext": {"runAsNonRoot": True}}}
    assert identity(pod, {"name": "c"}, image_uid=65532).uid is None  # the image's USER
    with pytest.raises(Exception, match="image will run as root"):
        identity(pod, {"name": "c"}, image_uid=None)


@pytest.mark.parametrize("target", ["/etc/a:b", "/etc/a,b"])
def test_a_mount_path_podman_cannot_express_is_refused(target: str):
    with pytest.raises(StackError, match="cannot pass through podman"):
        argv(identity(POD, LOCKED), mounts=[Mount(Path("/w/v"), target, True)])


def test_env_names_podman_would_read_itself_are_refused():
    kubelet_podman.check_env_names({"LUCID_X": "1", "HOME": "/h"})
    with pytest.raises(StackError, match="CONTAINERS_CONF, TMPDIR"):
        kubelet_podman.check_env_names({"TMPDIR": "/t", "CONTAINERS_CONF": "/c"})


@pytest.mark.parametrize(("quantity", "cpus"), [("250m", "0.25"), ("2", "2"), ("1500m", "1.5")])
def test_cpu_quantities(quantity: str, cpus: str):
    assert kubelet_podman.cpu_quantity(quantity) == cpus


def test_names_and_process_images():
    assert kubelet_podman.container_name(POD, "recorder", 2) == "k8s_recorder_rec-0_team-a_u-1_2"
    assert kubelet_podman.runs_as_process("process.local/lucid-standin-recorder:0.1.0")
    assert not kubelet_podman.runs_as_process("localhost/lucid-recorder:0.1.0")
