"""Checks that every external command the stack runs is on PATH, naming the package of each.

The bootstrap runs this right after its apt step; tests/unit/test_host_commands.py runs it
too, so a fresh machine that lacks a command fails once, by name, instead of in every test
that happens to call it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping

from lucid_devstack.versions import BOOTSTRAP_PACKAGES, COMMANDS

# Root's PATH as Debian sets it: xrdp, nft and friends live in the sbin directories.
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing_commands(commands: Mapping[str, str] = COMMANDS,
                     path: str = SEARCH_PATH) -> dict[str, str]:
    """The commands (with their packages) that are not found on `path`."""
    return {command: package for command, package in commands.items()
            if shutil.which(command, path=path) is None}


def packages_needed(commands: Mapping[str, str] = COMMANDS,
                    path: str = SEARCH_PATH) -> list[str]:
    """Packages to consider: those listed for a command that is not on `path`, and the
    bootstrap's own packages, which ship no command (the bootstrap skips installed ones).

    A command already there from elsewhere needs no package (npm comes with NodeSource's
    nodejs, whose package conflicts with Debian's npm).
    """
    return sorted(set(missing_commands(commands, path).values()) | set(BOOTSTRAP_PACKAGES))


def report(missing: Mapping[str, str]) -> str:
    lines = [f"  {command}  (Debian package {package})" for command, package in missing.items()]
    packages = " ".join(sorted(set(missing.values())))
    return ("missing commands:\n" + "\n".join(lines)
            + f"\ninstall them with: apt-get install --no-install-recommends {packages}")


def main() -> int:
    missing = missing_commands()
    if missing:
        print(f"[lucid bootstrap] {report(missing)}", file=sys.stderr)
        return 1
    print(f"[lucid bootstrap] all {len(COMMANDS)} external commands found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
