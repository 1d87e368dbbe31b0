"""Builds the operator and recorder images with podman, from the repo's own Dockerfiles.

    python -m lucid_devstack.images [--force] [operator|recorder ...]

No registry serves base images here, so this makes equivalent local bases first:
- the build base: Debian 12 from `debootstrap --variant=minbase` with python3, python3-venv,
  gcc, libc6-dev and ca-certificates (what the Dockerfiles otherwise apt-get into
  `debian:12.x-slim`), imported with `podman import`;
- the Rust image: this machine's Rust toolchain laid out as the official `rust` image lays
  it out (/usr/local/cargo/bin, /usr/local/rustup).
Both are passed as the Dockerfiles' build arguments. The images are tagged
localhost/lucid-<kind>:<version> and labelled with a hash of their inputs: a second run with
unchanged inputs builds nothing. Images are never pushed anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from lucid_devstack import podman
from lucid_devstack.build import _build_lock
from lucid_devstack.proc import StackError

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
KINDS = ("operator", "recorder")
# The build context each image copies (its Dockerfile's COPY sources).
CONTEXT = {
    "operator": ("common", "operator", "images/runtime_tree.py"),
    "recorder": ("common", "recorder", "native", "images/runtime_tree.py"),
}
# Left out of every context by .dockerignore, so left out of the inputs hash too.
IGNORED_DIRS = ("__pycache__", "build")
IGNORED_PATHS = ("native/target",)
BUILD_BASE = "localhost/lucid-debian-build:12"
BUILD_BASE_PACKAGES = ("python3", "python3-venv", "gcc", "libc6-dev", "ca-certificates")
RUST_IMAGE_REPO = "localhost/lucid-rust"
INPUTS_LABEL = "dev.lucid.inputs"
# Where the host trusts its TLS peers: the build's pip and cargo fetch through the same
# registries as the host does, and the host's CA bundle and pip config make that work.
HOST_TRUST = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf")
BUILD_TIMEOUT_S = 3600


def image_name(kind: str) -> str:
    return f"localhost/lucid-{kind}:{VERSION}"


def _say(message: str) -> None:
    print(f"[lucid images] {message}", flush=True)


# --- the local bases ---------------------------------------------------------------------


def debian_mirror(sources: Iterable[Path] = (Path("/etc/apt/sources.list.d/debian.sources"),
                                             Path("/etc/apt/sources.list"))) -> str:
    """The Debian mirror apt uses on this machine, for debootstrap."""
    for path in sources:
        if not path.exists():
            continue
        text = path.read_text()
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            uri = match.group(1)
            if "security" not in uri:
                return uri
    raise StackError("no Debian mirror found in apt's sources for debootstrap")


def ensure_build_base() -> None:
    ensure_debian_base(BUILD_BASE, BUILD_BASE_PACKAGES, "the build base")


def ensure_debian_base(image: str, packages: Iterable[str], what: str,
                       force: bool = False) -> float:
    """Debian 12 minbase plus `packages` as `image`, unless an image of that package list
    exists; the seconds it took (0 when it was there)."""
    packages = tuple(packages)
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:16]
    if not force and podman.image_label(image, INPUTS_LABEL) == key:
        return 0.0
    debootstrap = shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if debootstrap is None:
        raise StackError("debootstrap is not installed (Debian package debootstrap)")
    _say(f"making {what} {image} with debootstrap (about 2 minutes)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lucid-base-") as scratch:
        root = Path(scratch) / "root"
        done = subprocess.run(
            [debootstrap, "--variant=minbase", f"--include={','.join(packages)}",
             "bookworm", str(root), debian_mirror()],
            capture_output=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise StackError(f"debootstrap failed: {done.stdout.decode()[-1500:]}"
                             f"{done.stderr.decode()[-1500:]}")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        _import(root, image, key)
    took = time.monotonic() - started
    _say(f"{what} {image} ready in {took:.0f}s")
    return took


def _import(root: Path, image: str, key: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                           stdout=subprocess.PIPE)
    try:
        done = subprocess.run(podman.argv("import", "--change", f"LABEL {INPUTS_LABEL}={key}",
                                          "-", image),
                              stdin=tar.stdout, capture_output=True, timeout=900, check=False)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait(timeout=60)
    if done.returncode != 0:
        raise StackError(f"podman import {image} failed: {done.stderr.decode()[-1500:]}")


def rust_toolchain() -> tuple[str, Path]:
    """(version, sysroot) of the Rust compiler on PATH."""
    rustc = shutil.which("rustc")
    if rustc is None:
        raise StackError("rustc is not on PATH: the recorder image builds aardwolf's Rust "
                         "extension in its build stage")
    version = subprocess.run([rustc, "--version"], capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()[1]
    sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
    return version, Path(sysroot)


def ensure_rust_image() -> str:
    version, sysroot = rust_toolchain()
    image = f"{RUST_IMAGE_REPO}:{version}"
    if podman.image_exists(image):
        return image
    _say(f"making {image} from this machine's Rust toolchain ({sysroot})")
    with tempfile.TemporaryDirectory(prefix="lucid-rust-") as scratch:
        tar_path = Path(scratch) / "rust.tar"
        toolchain = "usr/local/rustup/toolchains/local"
        with tarfile.open(tar_path, "w") as tar:
            # The documentation (share/) is most of a toolchain and no build reads it.
            for part in ("bin", "lib", "libexec"):
                if (sysroot / part).exists():
                    tar.add(sysroot / part, arcname=f"{toolchain}/{part}")
            for tool in sorted((sysroot / "bin").iterdir()):
                link = tarfile.TarInfo(f"usr/local/cargo/bin/{tool.name}")
                link.type = tarfile.SYMTYPE
                link.linkname = f"../../rustup/toolchains/local/bin/{tool.name}"
                tar.addfile(link)
        with tar_path.open("rb") as stream:
            done = subprocess.run(podman.argv("import", "-", image), stdin=stream,
                                  capture_output=True, timeout=900, check=False)
        if done.returncode != 0:
            raise StackError(f"podman import {image} failed: {done.stderr.decode()[-1500:]}")
    return image


# --- the images --------------------------------------------------------------------------


def _context_files(kind: str) -> list[Path]:
    files = [REPO / f"Dockerfile.{kind}", REPO / ".dockerignore"]
    for entry in CONTEXT[kind]:
        path = REPO / entry
        if path.is_file():
            files.append(path)
            continue
        files.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not _ignored(p))
    return files


def _ignored(path: Path) -> bool:
    relative = path.relative_to(REPO)
    if any(part in IGNORED_DIRS or part.endswith(".egg-info") for part in relative.parts):
        return True
    return any(relative.is_relative_to(ignored) for ignored in IGNORED_PATHS)


def inputs_hash(kind: str) -> str:
    digest = hashlib.sha256()
    for path in _context_files(kind):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def is_current(kind: str) -> bool:
    return podman.image_label(image_name(kind), INPUTS_LABEL) == inputs_hash(kind)


def build_image(kind: str, force: bool = False) -> float:
    """Build one image unless it is current; the seconds it took (0 when current)."""
    key = inputs_hash(kind)
    if not force and podman.image_label(image_name(kind), INPUTS_LABEL) == key:
        return 0.0
    started = time.monotonic()
    ensure_build_base()
    args = ["build", *podman.ULIMITS, "--network", "host", "--layers",
            "-f", str(REPO / f"Dockerfile.{kind}"), "-t", image_name(kind),
            "--label", f"{INPUTS_LABEL}={key}", "--build-arg", f"BUILD_BASE={BUILD_BASE}"]
    if kind == "recorder":
        args += ["--build-arg", f"RUST_IMAGE={ensure_rust_image()}"]
    for path in HOST_TRUST:
        if Path(path).exists():
            args += ["--volume", f"{path}:{path}:ro"]
    _say(f"building {image_name(kind)}")
    with tempfile.NamedTemporaryFile(prefix=f"lucid-image-{kind}-", suffix=".log",
                                     delete=False) as log:
        done = subprocess.run(podman.argv(*args, str(REPO)), stdout=log,
                              stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise StackError(f"building {image_name(kind)} failed; the last lines of {log.name}:\n"
                         + "\n".join(Path(log.name).read_text(errors="replace")
                                     .splitlines()[-40:]))
    Path(log.name).unlink()
    took = time.monotonic() - started
    _say(f"{image_name(kind)} built in {took:.0f}s, {image_size(kind) / 1e6:.0f} MB")
    return took


def image_size(kind: str) -> int:
    """Uncompressed size in bytes, as `podman image inspect` reports it."""
    done = podman.run(["image", "inspect", "--format", "{{.Size}}", image_name(kind)],
                      timeout=60)
    return int(done.stdout.decode().strip())


def ensure_images(kinds: Iterable[str] = KINDS, force: bool = False) -> None:
    with _build_lock():
        for kind in kinds:
            build_image(kind, force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lucid_devstack.images",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", metavar="KIND", help=f"{' or '.join(KINDS)} "
                        "(default: both)")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}: choose from {', '.join(KINDS)}")
    try:
        ensure_images(args.kinds or KINDS, args.force)
    except (StackError, subprocess.TimeoutExpired) as exc:
        print(f"[lucid images] FAILED: {exc}", file=sys.stderr)
        return 1
    for kind in args.kinds or KINDS:
        print(f"{image_name(kind)}\t{image_size(kind) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
