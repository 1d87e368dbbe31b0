"""Fixtures shared by the unit tests."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from lucid_recorder import native


@pytest.fixture(params=["reference", "native"])
def implementation(request: pytest.FixtureRequest,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test once on the pure-Python reference and once on lucid_native.

    The native run imports the extension itself: the bootstrap builds it, so a missing
    extension fails the test rather than skipping it.
    """
    if request.param == "reference":
        monkeypatch.setattr(native, "core", None)
    else:
        monkeypatch.setattr(native, "core", importlib.import_module("lucid_native"))
    yield request.param
