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

from types import ModuleType

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Not the pod contract's LUCID_RECORDER_ prefix: lucid-play and the benchmarks read it too.
ENV_PREFIX = "LUCID_"


class NativeSettings(BaseSettings):
    """Read at import, before the recorder's own settings: every entry point has a hot path
    (the recorder, lucid-play, the benchmarks)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    native: str = Field(
        "auto", description="The recorder's hot path: `auto` the native core (lucid_native) "
        "if installed, else the pure-Python reference; `0` always the reference; `1` the "
        "native core or fail at start. The recorder image sets `1`.")


ENV = f"{ENV_PREFIX}NATIVE"


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


core: ModuleType | None = load(NativeSettings().native)


def implementation() -> str:
    """"native" or "reference": what the recorder runs, for logs and benchmarks."""
    return "native" if core is not None else "reference"
