"""A fresh Debian 12 machine passes: the bootstrap and a stack test in a plain container.

Runs what `make test-fresh` runs (lucid_devstack.fresh): a container from a debootstrap
minbase with only Python, make and ca-certificates; a clean clone of HEAD; cold apt, pip and
Go builds (10 to 20 minutes on 2 cores); then tests/stack/test_stack.py, which starts the
control plane, MinIO and the xrdp desktop (Xvnc with its vncpasswd-made password file).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lucid_devstack import build, fresh
from lucid_devstack.versions import COMMANDS

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def collected(test: str) -> int:
    """How many tests `test` holds, as this checkout's pytest collects them."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", test],
                          capture_output=True, text=True, timeout=300, check=True,
                          cwd=fresh.REPO)
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


@pytest.mark.timeout(fresh.RUN_TIMEOUT_S + 600)
def test_a_fresh_debian_12_machine_bootstraps_and_passes_a_stack_test():
    expected = collected(fresh.STACK_TEST)
    assert expected > 0
    outcome = fresh.run(fresh.STACK_TEST)
    print(fresh.report(outcome))
    failing = "\n".join(outcome.failing_lines())
    assert outcome.bootstrap_exit == 0, failing
    assert outcome.commands_found == len(COMMANDS), failing
    assert {p.name for p in outcome.phases} >= {"apt", "python venv", "command check",
                                                 "go builds", "stack test"}
    # Every Go binary was built inside, from nothing: no cache leaked in.
    assert set(outcome.go_steps) == {step.name for step in build.STEPS}, outcome.go_steps
    assert outcome.summary is not None, failing
    assert outcome.summary.count("passed") == expected, outcome.summary.line
    assert outcome.summary.clean_pass, outcome.summary.line
    assert outcome.exit_code == 0, failing
    assert outcome.passed
