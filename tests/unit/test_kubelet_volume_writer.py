"""The local kubelet writes Secret/ConfigMap volumes as the real one's AtomicWriter does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lucid_devstack.kubelet_spec import DATA_LINK, Unsupported, _write_files


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()
                  if p.name.startswith("..") and p.name not in (DATA_LINK,) and p.is_dir())


def test_files_live_in_a_version_behind_the_data_link(tmp_path: Path):
    assert _write_files(tmp_path, {"accessKey": (b"old", 0o440), "dir/ca.crt": (b"pem", 0o444)},
                        None, {})
    assert (tmp_path / "accessKey").is_symlink()
    assert os.readlink(tmp_path / "accessKey") == f"{DATA_LINK}/accessKey"
    assert os.readlink(tmp_path / "dir") == f"{DATA_LINK}/dir"
    assert (tmp_path / "accessKey").read_text() == "old"
    assert (tmp_path / "dir" / "ca.crt").read_text() == "pem"
    assert (tmp_path / DATA_LINK / "accessKey").stat().st_mode & 0o777 == 0o440
    assert len(_versions(tmp_path)) == 1


def test_an_update_swaps_the_whole_version_and_drops_the_old_one(tmp_path: Path):
    _write_files(tmp_path, {"accessKey": (b"old", 0o440), "gone": (b"x", 0o440)}, None, {})
    held = (tmp_path / "accessKey").open()  # a reader in the middle of the swap
    first = _versions(tmp_path)
    assert _write_files(tmp_path, {"accessKey": (b"new", 0o440)}, None, {},
                        only_if_changed=True)
    assert (tmp_path / "accessKey").read_text() == "new"
    assert held.read() == "old"  # it keeps reading the version it opened, whole
    held.close()
    assert not (tmp_path / "gone").exists() and not (tmp_path / "gone").is_symlink()
    assert _versions(tmp_path) != first and len(_versions(tmp_path)) == 1
    assert not (tmp_path / f"{DATA_LINK}_tmp").exists()


def test_unchanged_content_is_not_rewritten(tmp_path: Path):
    _write_files(tmp_path, {"k": (b"v", 0o440)}, None, {})
    before = os.readlink(tmp_path / DATA_LINK)
    assert _write_files(tmp_path, {"k": (b"v", 0o440)}, None, {}, only_if_changed=True) is False
    assert os.readlink(tmp_path / DATA_LINK) == before
    # A new mode is a change too.
    assert _write_files(tmp_path, {"k": (b"v", 0o400)}, None, {}, only_if_changed=True)


def test_item_paths_cannot_escape_the_volume(tmp_path: Path):
    volume = tmp_path / "vol"
    volume.mkdir()
    with pytest.raises(Unsupported, match="escapes its volume"):
        _write_files(volume, {"../evil": (b"x", 0o444)}, None, {})
    assert _versions(volume) == [] and not (tmp_path / "evil").exists()
