"""Shared fixtures: one real local stack per test session, its logs shown on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lucid_devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack.create(tmp_path_factory.mktemp("stack")).start()
    print(f"\nlocal stack up in {running.timings['total']:.1f}s: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in running.timings.items() if k != "total"))
    yield running
    running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed and "stack" in getattr(item, "fixturenames", ()):
        running = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
        if isinstance(running, Stack):
            report.sections.append(("local stack logs (tails)", running.log_report()))
    return report
