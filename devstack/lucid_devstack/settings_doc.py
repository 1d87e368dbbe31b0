"""Generates docs/configuration.md from the settings models, so the reference cannot drift.

    python -m lucid_devstack.settings_doc [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from lucid_operator.settings import OperatorSettings
from lucid_recorder.native import NativeSettings
from lucid_recorder.settings import RecorderSettings

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _table(model: type[BaseSettings]) -> list[str]:
    prefix = model.model_config.get("env_prefix", "")
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        if field.is_required():
            default = "(required)"
        else:
            value = (field.default_factory() if field.default_factory is not None  # type: ignore[call-arg]
                     else field.default)
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            default = f"`{shown}`" if shown else "(empty)"
        rows.append(f"| `{prefix}{name.upper()}` | {default} | {field.description or ''} |")
    return rows


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings models by `python -m lucid_devstack.settings_doc`; "
        "a test fails when this file is stale.",
        "",
        "## Operator (`operator/lucid_operator/settings.py`)",
        "",
        "Set on the operator Deployment; the Helm chart fills them from its values. Lists are "
        "comma-separated.",
        "",
        *_table(OperatorSettings),
        "",
        "## Recorder pod (`recorder/lucid_recorder/settings.py`)",
        "",
        "Set by the operator on each recorder pod (`common/lucid_common/contract.py`); "
        "credentials arrive only through `secretKeyRef`. Listed for operators who debug a pod.",
        "",
        *_table(RecorderSettings),
        "",
        "## Recorder hot path (`recorder/lucid_recorder/native.py`)",
        "",
        "Read by everything that imports `lucid_recorder` (the recorder, `lucid-play`, the "
        "benchmarks). The recorder image sets it to `1`; the operator does not set it.",
        "",
        *_table(NativeSettings),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python -m lucid_devstack.settings_doc", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
