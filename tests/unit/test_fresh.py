"""The fresh-machine run's reading of its container's output, and the container it asks for."""

from datetime import UTC, datetime
from pathlib import Path

from lucid_devstack import fresh
from lucid_devstack.versions import COMMANDS

BOOTSTRAP = [
    "[lucid fresh] bootstrap: make bootstrap",
    "bash devstack/bootstrap.sh",
    "[lucid bootstrap] apt: installing xrdp podman",
    "Setting up xrdp (0.9.21.1-1) ...",
    "[lucid bootstrap] python: creating .venv and installing pinned dependencies",
    "[lucid bootstrap] commands: checking that every command the stack runs is on PATH",
    f"[lucid bootstrap] all {len(COMMANDS)} external commands found",
    "[lucid bootstrap] go: building what is missing",
    "[lucid build 1/2] etcd: building (cold builds take minutes on 2 cores)...",
    "[lucid build 1/2] etcd: done in 250s",
    "[lucid build 2/2] helm: done in 120s",
    "[lucid build] all binaries present in /root/.cache/lucid/bin",
    "[lucid bootstrap] ready",
    "[lucid fresh] bootstrap exit 0",
]
PASSING_TEST = [
    "[lucid fresh] stack test: pytest tests/stack/test_stack.py",
    "tests/stack/test_stack.py .....                                  [100%]",
    "============================== 5 passed in 48.31s ==============================",
    "[lucid fresh] stack test exit 0",
]


def timed(lines: list[str], step: float = 10.0) -> list[tuple[float, str]]:
    return [(index * step, line + "\n") for index, line in enumerate(lines)]


def outcome(lines: list[str], exit_code: int = 0) -> fresh.Outcome:
    return fresh.outcome_of(timed(lines), exit_code, base_seconds=90.0, total_seconds=1000.0,
                            log=Path("/tmp/fresh.log"), started_at=datetime(2026, 1, 2, tzinfo=UTC))


def test_a_clean_run_passes_with_every_phase_timed():
    result = outcome(BOOTSTRAP + PASSING_TEST)
    assert result.passed
    assert [(p.name, p.seconds) for p in result.phases] == [
        ("apt", 20.0), ("python venv", 10.0), ("command check", 20.0), ("go builds", 50.0),
        ("stack test", 30.0)]
    assert result.go_steps == {"etcd": 250, "helm": 120}
    assert result.commands_found == len(COMMANDS)
    assert result.summary is not None and result.summary.counts == {"passed": 5}
    text = fresh.report(result)
    assert "PASSED" in text and "go builds: 50s" in text and "etcd: 4m10s" in text
    assert "5 passed in 48.31s" in text


def test_a_skipped_test_is_not_a_pass():
    skipped = [line.replace("5 passed", "4 passed, 1 skipped") for line in PASSING_TEST]
    result = outcome(BOOTSTRAP + skipped)
    assert result.summary is not None and result.summary.count("skipped") == 1
    assert not result.summary.clean_pass
    assert not result.passed


def test_errors_and_failures_are_counted_in_both_spellings():
    summary = fresh.pytest_summary(
        ["===== 1 failed, 794 passed, 95 errors, 2 warnings in 930.12s (0:15:30) ====="])
    assert summary is not None
    assert summary.counts == {"failed": 1, "passed": 794, "errors": 95, "warnings": 2}
    one = fresh.pytest_summary(["=== 1 error in 0.52s ==="])
    assert one is not None and one.counts == {"errors": 1} and not one.clean_pass
    assert fresh.pytest_summary(["no summary here"]) is None


def test_a_missing_command_fails_the_run_and_shows_the_failing_phase():
    lines = [
        *BOOTSTRAP[:6],
        "[lucid bootstrap] missing commands:",
        "  vncpasswd  (Debian package tigervnc-tools)",
        "make: *** [Makefile:8: bootstrap] Error 1",
        "[lucid fresh] bootstrap exit 2",
    ]
    result = outcome(lines, exit_code=2)
    assert not result.passed
    assert result.bootstrap_exit == 2 and result.commands_found is None
    assert result.phases[-1].name == "command check"
    assert "  vncpasswd  (Debian package tigervnc-tools)" in result.failing_lines()
    text = fresh.report(result)
    assert "FAILED" in text and "last lines of command check" in text and "vncpasswd" in text


def test_a_run_that_dies_before_any_phase_shows_its_last_lines():
    result = outcome(["bash: make: command not found"], exit_code=127)
    assert not result.passed and result.phases == ()
    assert result.failing_lines() == ["bash: make: command not found"]


def test_the_container_is_plain_privileged_cold_and_named():
    argv = fresh.container_argv(
        image=fresh.FRESH_BASE, src=Path("/tmp/x/lucid"), goroot=Path("/opt/go"),
        go_env={"GOPROXY": "https://proxy.example"}, trust=[Path("/etc/pip.conf")],
        test="tests/stack/test_stack.py")
    assert argv[:4] == ["run", "--rm", "--name", fresh.CONTAINER]
    assert "--privileged" in argv and argv[argv.index("--network") + 1] == "host"
    volumes = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--volume"]
    assert volumes == ["/tmp/x/lucid:/root/lucid", "/opt/go:/usr/local/go:ro",
                       "/etc/pip.conf:/etc/pip.conf:ro"]
    env = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--env")
    assert env["XDG_CACHE_HOME"] == "/root/.cache" and env["HOME"] == "/root"
    assert env["PATH"].startswith("/usr/local/go/bin:") and "/usr/sbin" in env["PATH"]
    assert env["GOPROXY"] == "https://proxy.example"
    assert argv[-1] == "tests/stack/test_stack.py"
    # Nothing of the stack is in the base: the bootstrap has to install it.
    assert not set(fresh.FRESH_BASE_PACKAGES) & set(COMMANDS.values())
