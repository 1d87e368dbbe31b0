"""The local kubelet reads an emptyDir's sizeLimit the way Kubernetes reads a Quantity.

The operator's own parser is checked against this one in test_quantity.py.
"""

from __future__ import annotations

import pytest

from lucid_devstack import kubelet_spec
from lucid_devstack.kube import ControlPlane
from lucid_devstack.kubelet import LocalKubelet
from lucid_devstack.kubelet_spec import (
    Unsupported,
    check_supported,
    empty_dir_limit,
    quantity_bytes,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("2Gi", 2 * 1024**3),
    ("512Mi", 512 * 1024**2),
    ("300k", 300_000),
    ("4M", 4_000_000),
    ("1Ki", 1024),
    ("1.5Gi", 1536 * 1024**2),      # the apiserver would canonicalise this to 1536Mi
    (".5Ki", 512),
    ("1.", 1),
    ("1e3", 1000),
    ("1E3", 1000),                  # an exponent, not exa
    ("2E", 2 * 10**18),             # exa
    ("1e-3", 1),                    # rounded up to whole bytes, like Quantity.Value()
    ("100m", 1),                    # milli-bytes: still one byte
    ("0", 0),
    ("+7", 7),
    (1048576, 1048576),             # a bare number survives YAML as an int
])
def test_quantities_in_bytes(text: str | int, expected: int):
    assert quantity_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "2GB", "2gi", "Gi", "1.5.5", "e3", "1e", "1 Gi", "-1Mi",
                                  "2Gi2", "0x10"])
def test_invalid_quantities_are_refused(text: str):
    with pytest.raises(ValueError, match=r"not a quantity|is negative"):
        quantity_bytes(text)


def _pod(empty_dir: dict) -> dict:
    return {"metadata": {"name": "p", "namespace": "n", "uid": "u"},
            "spec": {"containers": [{"name": "main", "command": ["true"]}],
                     "volumes": [{"name": "spool", "emptyDir": empty_dir}]}}


def test_size_limit_of_an_empty_dir():
    assert empty_dir_limit({"name": "spool", "emptyDir": {"sizeLimit": "4Mi"}}) == 4 << 20
    # Without a limit, or with 0 (which the kubelet ignores), it stays a plain directory.
    assert empty_dir_limit({"name": "spool", "emptyDir": {}}) is None
    assert empty_dir_limit({"name": "spool", "emptyDir": {"sizeLimit": "0"}}) is None
    check_supported(_pod({"sizeLimit": "2Gi"}))


def test_a_bad_size_limit_fails_the_pod_naming_volume_and_value():
    with pytest.raises(Unsupported) as refused:
        check_supported(_pod({"sizeLimit": "2GB"}))
    message = str(refused.value)
    assert "'spool'" in message and "sizeLimit" in message and "'2GB'" in message, message


def test_node_disk_knob_shrinks_sized_empty_dirs_only_below_their_limit(tmp_path, monkeypatch):
    knob = tmp_path / "kubelet" / kubelet_spec.NODE_DISK_FREE_FILE
    knob.parent.mkdir()
    monkeypatch.setattr(kubelet_spec, "_node_disk_file", None)
    assert kubelet_spec.node_disk_free() is None  # not watched: never shrinks
    kubelet_spec.watch_node_disk(knob)
    assert kubelet_spec.node_disk_free() is None  # watched, but not set

    kubelet = LocalKubelet(ControlPlane(tmp_path / "kube"), tmp_path)  # not started
    kubelet.set_node_disk_free(256 << 10)
    assert knob.read_text() == f"{256 << 10}\n"
    free = kubelet_spec.node_disk_free()
    assert free == 256 << 10
    assert kubelet_spec.tmpfs_size(1 << 20, free) == 256 << 10   # the disk is fuller
    assert kubelet_spec.tmpfs_size(128 << 10, free) == 128 << 10  # the limit is smaller
    assert kubelet_spec.tmpfs_size(1 << 20, None) == 1 << 20
    # tmpfs reads size=0 as unlimited: a full disk still gets one page, never "no limit".
    kubelet.set_node_disk_free(0)
    assert kubelet_spec.tmpfs_size(1 << 20, kubelet_spec.node_disk_free()) == 4096
    kubelet.set_node_disk_free(None)
    assert not knob.exists() and kubelet_spec.node_disk_free() is None
    with pytest.raises(ValueError, match="negative"):
        kubelet.set_node_disk_free(-1)
    knob.write_text("lots\n")
    with pytest.raises(OSError, match="not a byte count"):
        kubelet_spec.node_disk_free()
