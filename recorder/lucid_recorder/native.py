"""The recorder's native core (lucid_native, a Rust extension in native/) when installed.

Every function lucid_native provides has a pure-Python reference next to the code that
calls it, and that reference stays the definition: the tests compare both byte for byte.
Callers read `native.core` at call time (never `from ... import core`), so that a test
can switch implementations.

LUCID_NATIVE chooses: unset or "auto", the extension if it is installed, else the
reference; "0", always the reference; "1", the extension, and failing at import when it
is missing (for an image or a benchmark that must not silently fall back).
"""

from __future__ import annotations

import os
from types import ModuleType

ENV = "LUCID_NATIVE"


def load(choice: str | None) -> ModuleType | None:
    choice = (choice or "auto").strip().lower()
    if choice == "0":
        return None
    if choice not in ("auto", "1"):
        raise ValueError(f"{ENV}={choice!r}: use 0 (reference), 1 (native) or auto")
    try:
        import lucid_native
    except ImportError:
        if choice == "1":
            raise
        return None
    return lucid_native


core: ModuleType | None = load(os.environ.get(ENV))


def implementation() -> str:
    """"native" or "reference": what the recorder runs, for logs and benchmarks."""
    return "native" if core is not None else "reference"
