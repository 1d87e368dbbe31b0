"""Imports run one way: lucid_common ← lucid_operator, lucid_common ← lucid_recorder.

The two products share code only through lucid_common, and test infrastructure
(lucid_devstack) never reaches a product package. Checked on the source, so an import
inside a function counts as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "lucid_common": REPO / "common" / "lucid_common",
    "lucid_operator": REPO / "operator" / "lucid_operator",
    "lucid_recorder": REPO / "recorder" / "lucid_recorder",
}
ALLOWED = {
    "lucid_common": set(),
    "lucid_operator": {"lucid_common"},
    "lucid_recorder": {"lucid_common"},
}
FIRST_PARTY = {*PACKAGES, "lucid_devstack"}


def first_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & FIRST_PARTY
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_imports_only_what_it_depends_on(package: str):
    wrong = {}
    for path in sorted(PACKAGES[package].rglob("*.py")):
        bad = first_party_imports(path) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(REPO))] = sorted(bad)
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}: {wrong}"


def test_the_check_sees_imports(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom lucid_recorder.x import y\n"
                      "def f():\n    import lucid_devstack.stack\n")
    assert first_party_imports(module) == {"lucid_recorder", "lucid_devstack"}
