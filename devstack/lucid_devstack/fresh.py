"""Proves a fresh Debian 12 machine passes: the bootstrap and one stack test, from nothing.

    python -m lucid_devstack.fresh [--rebuild-base] [--test PATH]     (make test-fresh)

The base, localhost/lucid-debian-fresh:12, is `debootstrap --variant=minbase` plus only what
the README asks of a fresh machine: Python 3.11 (Debian's python3), make (to type the
README's commands) and ca-certificates; none of the stack's packages. Go >= 1.26 is a stated
prerequisite that Debian 12 lacks, so this machine's toolchain is mounted read-only at
/usr/local/go (where go.dev's tarball puts it), with the host's GOPROXY and friends.

The repo goes in as a clean clone of HEAD (commit first: uncommitted changes are not in
it), never the dev tree with its .venv. The container is privileged (the stack uses mount
namespaces, tmpfs and nft) on the host network (every port is on 127.0.0.1), with the host's
CA bundle and pip.conf (the way out to PyPI and the Go proxy here), and with empty caches:
HOME, XDG_CACHE_HOME and GOPATH are new, so every pip download and Go build is cold. It runs
`make bootstrap`, then the stack test with the venv's pytest. Each phase's wall time comes
from the bootstrap's own progress lines, timed as they arrive.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lucid_devstack import images, podman
from lucid_devstack.proc import StackError
from lucid_devstack.versions import COMMANDS

REPO = Path(__file__).resolve().parents[2]
FRESH_BASE = "localhost/lucid-debian-fresh:12"
FRESH_BASE_PACKAGES = ("python3", "make", "ca-certificates")
CONTAINER = "lucid-fresh-machine"
# The quickest test that starts the whole stack: control plane, MinIO and the xrdp desktop
# (Xvnc with a vncpasswd-made password file: what a fresh machine lacked).
STACK_TEST = "tests/stack/test_stack.py"
GOROOT_INSIDE = "/usr/local/go"
SRC_INSIDE = "/root/lucid"
# Root's PATH on Debian, after Go's bin as go.dev's install guide puts it.
PATH_INSIDE = f"{GOROOT_INSIDE}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# How the host reaches the Go module proxy: these travel into the container.
GO_ENV = ("GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOINSECURE", "GOFLAGS",
          "GOTOOLCHAIN")
# Cold Go builds of the control plane, MinIO and helm take 10 to 20 minutes on 2 cores.
RUN_TIMEOUT_S = 3 * 3600
FAILURE_TAIL_LINES = 40

# Each phase starts at a progress line of the bootstrap, or of the script below.
PHASE_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("apt", re.compile(r"^\[lucid bootstrap\] apt:")),
    ("python venv", re.compile(r"^\[lucid bootstrap\] python:")),
    ("command check", re.compile(r"^\[lucid bootstrap\] commands:")),
    ("go builds", re.compile(r"^\[lucid bootstrap\] go:")),
    ("stack test", re.compile(r"^\[lucid fresh\] stack test:")),
)
# A line that ends the phase before it without starting another.
PHASE_ENDS = re.compile(r"^\[lucid bootstrap\] ready$|^\[lucid fresh\] (bootstrap|stack test) "
                        r"exit -?\d+$")
BOOTSTRAP_EXIT = re.compile(r"^\[lucid fresh\] bootstrap exit (-?\d+)$")
COMMANDS_FOUND = re.compile(r"^\[lucid bootstrap\] all (\d+) external commands found$")
GO_STEP_DONE = re.compile(r"^\[lucid build \d+/\d+\] (.+): done in (\d+)s$")
PYTEST_SUMMARY = re.compile(r"^=+ (.+) in [\d.]+s(?: \([^)]*\))? =+$")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|"
                          r"warnings?)")

INSIDE_SCRIPT = f"""\
exec 2>&1
cd {SRC_INSIDE}
echo "[lucid fresh] bootstrap: make bootstrap"
make bootstrap
rc=$?
echo "[lucid fresh] bootstrap exit $rc"
[ "$rc" -eq 0 ] || exit "$rc"
echo "[lucid fresh] stack test: pytest $1"
.venv/bin/pytest -p no:cacheprovider "$1"
rc=$?
echo "[lucid fresh] stack test exit $rc"
exit "$rc"
"""


def _say(message: str) -> None:
    print(f"[lucid fresh] {message}", flush=True)


# --- pure: what the container's output says -----------------------------------------------


@dataclass
class Phase:
    name: str
    start: float
    end: float | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end if self.end is not None else self.start) - self.start


@dataclass(frozen=True)
class PytestSummary:
    line: str
    counts: Mapping[str, int]

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)

    @property
    def clean_pass(self) -> bool:
        """At least one test passed and nothing else happened: a skip is not a pass."""
        others = ("failed", "errors", "skipped", "xfailed", "xpassed")
        return self.count("passed") > 0 and not any(self.count(o) for o in others)


def pytest_summary(lines: Iterable[str]) -> PytestSummary | None:
    """pytest's last summary line ("==== 4 passed, 1 skipped in 52.10s ===="), parsed."""
    found = None
    for line in lines:
        match = PYTEST_SUMMARY.match(line.strip())
        if match:
            counts = {}
            for number, outcome in PYTEST_COUNT.findall(match.group(1)):
                # pytest writes "1 error" and "2 errors", "1 warning" and "2 warnings".
                key = {"error": "errors", "warning": "warnings"}.get(outcome, outcome)
                counts[key] = int(number)
            found = PytestSummary(line.strip(), counts)
    return found


def phases(timed_lines: Iterable[tuple[float, str]]) -> list[Phase]:
    """Split (seconds, line) pairs into the phases of PHASE_STARTS; each ends where the next
    starts, or at an end line, or at the last line seen."""
    found: list[Phase] = []
    last = 0.0
    for at, line in timed_lines:
        last = at
        text = line.strip()
        for name, pattern in PHASE_STARTS:
            if pattern.match(text):
                if found and found[-1].end is None:
                    found[-1].end = at
                found.append(Phase(name, at))
                break
        if found and found[-1].end is None:
            found[-1].lines.append(line.rstrip("\n"))
            if PHASE_ENDS.match(text):
                found[-1].end = at
    if found and found[-1].end is None:
        found[-1].end = last
    return found


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    bootstrap_exit: int | None
    commands_found: int | None
    go_steps: Mapping[str, int]
    summary: PytestSummary | None
    phases: tuple[Phase, ...]
    base_seconds: float
    total_seconds: float
    log: Path
    started_at: datetime
    tail: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return (self.exit_code == 0 and self.bootstrap_exit == 0
                and self.commands_found == len(COMMANDS)
                and self.summary is not None and self.summary.clean_pass)

    def failing_lines(self) -> list[str]:
        """The last lines of the phase that failed (of the whole run when none started)."""
        lines = list(self.phases[-1].lines) if self.phases else list(self.tail)
        return lines[-FAILURE_TAIL_LINES:]


def outcome_of(timed_lines: Sequence[tuple[float, str]], exit_code: int, base_seconds: float,
               total_seconds: float, log: Path, started_at: datetime) -> Outcome:
    lines = [line.strip() for _, line in timed_lines]
    bootstrap_exit = commands_found = None
    go_steps: dict[str, int] = {}
    for line in lines:
        if match := BOOTSTRAP_EXIT.match(line):
            bootstrap_exit = int(match.group(1))
        elif match := COMMANDS_FOUND.match(line):
            commands_found = int(match.group(1))
        elif match := GO_STEP_DONE.match(line):
            go_steps[match.group(1)] = int(match.group(2))
    return Outcome(exit_code=exit_code, bootstrap_exit=bootstrap_exit,
                   commands_found=commands_found, go_steps=go_steps,
                   summary=pytest_summary(lines), phases=tuple(phases(timed_lines)),
                   base_seconds=base_seconds, total_seconds=total_seconds, log=log,
                   started_at=started_at, tail=tuple(lines[-FAILURE_TAIL_LINES:]))


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def report(outcome: Outcome) -> str:
    base = (f"{_duration(outcome.base_seconds)} (made)" if outcome.base_seconds
            else "cached")
    rows = [f"fresh Debian 12 run of {outcome.started_at:%Y-%m-%d %H:%M} UTC: "
            + ("PASSED" if outcome.passed else "FAILED"),
            f"  base image {FRESH_BASE}: {base}"]
    for phase in outcome.phases:
        rows.append(f"  {phase.name}: {_duration(phase.seconds)}")
        if phase.name == "go builds":
            rows += [f"    {name}: {_duration(s)}" for name, s in outcome.go_steps.items()]
    rows.append(f"  total: {_duration(outcome.total_seconds)} (clone and container: "
                f"{_duration(outcome.total_seconds - outcome.base_seconds)})")
    rows.append(f"  bootstrap exit {outcome.bootstrap_exit}, commands found "
                f"{outcome.commands_found} of {len(COMMANDS)}, container exit "
                f"{outcome.exit_code}")
    rows.append("  stack test: " + (outcome.summary.line if outcome.summary
                                    else "no pytest summary"))
    rows.append(f"  log: {outcome.log}")
    if not outcome.passed:
        failed_in = outcome.phases[-1].name if outcome.phases else "the start"
        rows.append(f"  last lines of {failed_in}:")
        rows += [f"    {line}" for line in outcome.failing_lines()]
    return "\n".join(rows)


def container_argv(*, image: str, src: Path, goroot: Path, go_env: Mapping[str, str],
                   trust: Iterable[Path], test: str) -> list[str]:
    """`podman run` of the fresh machine (without podman's global flags)."""
    args = ["run", "--rm", "--name", CONTAINER, "--privileged", "--network", "host",
            *podman.ULIMITS,
            "--volume", f"{src}:{SRC_INSIDE}",
            "--volume", f"{goroot}:{GOROOT_INSIDE}:ro"]
    for path in trust:
        args += ["--volume", f"{path}:{path}:ro"]
    env = {"PATH": PATH_INSIDE, "HOME": "/root", "XDG_CACHE_HOME": "/root/.cache", **go_env}
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    return [*args, "--workdir", SRC_INSIDE, image, "bash", "-c", INSIDE_SCRIPT, "fresh", test]


# --- the edges: git, go, podman -------------------------------------------------------------


def host_go() -> tuple[Path, dict[str, str]]:
    """GOROOT of the Go on PATH, and the GO_ENV settings it has that are not empty."""
    go = shutil.which("go")
    if go is None:
        raise StackError("Go is not on PATH: the fresh machine borrows this machine's toolchain")
    done = subprocess.run([go, "env", "-json", "GOROOT", *GO_ENV], capture_output=True,
                          text=True, timeout=60, check=True)
    values = json.loads(done.stdout)
    return Path(values.pop("GOROOT")), {k: v for k, v in values.items() if v}


def clone_head(into: Path) -> Path:
    """A clean clone of the repo's HEAD under `into`, as a user's `git clone` leaves it."""
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    if dirty.strip():
        _say("the working tree has uncommitted changes: they are not part of this run")
    target = into / "lucid"
    done = subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise StackError(f"git clone of {REPO} failed: {done.stderr.strip()[-1500:]}")
    return target


def _remove_container() -> None:
    podman.run(["rm", "--force", "--ignore", "--time", "0", CONTAINER], timeout=120,
               check=False)


def run(test: str = STACK_TEST, rebuild_base: bool = False,
        log_dir: Path = REPO / "out") -> Outcome:
    """Make the base (unless cached), then bootstrap and test a clone in a fresh container."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    base_seconds = images.ensure_debian_base(FRESH_BASE, FRESH_BASE_PACKAGES,
                                             "the fresh-machine base", force=rebuild_base)
    goroot, go_env = host_go()
    trust = [Path(p) for p in images.HOST_TRUST if Path(p).exists()]
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"fresh-{started_at:%Y%m%dT%H%M%SZ}.log"
    timed: list[tuple[float, str]] = []
    # A run that crashed leaves its container behind, and the name would be taken.
    _remove_container()
    with tempfile.TemporaryDirectory(prefix="lucid-fresh-") as scratch:
        src = clone_head(Path(scratch))
        argv = podman.argv(*container_argv(image=FRESH_BASE, src=src, goroot=goroot,
                                           go_env=go_env, trust=trust, test=test))
        _say(f"running the bootstrap and {test} in a fresh container; log: {log}")
        container_start = time.monotonic()
        with log.open("w") as out, subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors="replace") as proc:
            # The whole run is bounded: on the deadline the container goes, and so does
            # the pipe this loop reads.
            watchdog = threading.Timer(RUN_TIMEOUT_S, _remove_container)
            watchdog.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    at = time.monotonic() - container_start
                    timed.append((at, line))
                    out.write(f"{_duration(at):>7} {line}")
                    out.flush()
                    if line.startswith("[lucid") or PYTEST_SUMMARY.match(line.strip()):
                        print(f"  +{_duration(at):>6} {line.rstrip()}", flush=True)
                exit_code = proc.wait(timeout=300)
            finally:
                watchdog.cancel()
                _remove_container()
    return outcome_of(timed, exit_code, base_seconds, time.monotonic() - started, log,
                      started_at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lucid_devstack.fresh",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--test", default=STACK_TEST,
                        help=f"the stack test to run after the bootstrap (default {STACK_TEST})")
    parser.add_argument("--rebuild-base", action="store_true",
                        help=f"make {FRESH_BASE} again even when it is current")
    args = parser.parse_args(argv)
    try:
        outcome = run(args.test, args.rebuild_base)
    except (StackError, subprocess.SubprocessError, OSError) as exc:
        print(f"[lucid fresh] FAILED: {exc}", file=sys.stderr)
        return 1
    print(report(outcome), flush=True)
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
