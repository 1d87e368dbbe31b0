"""Assembles a distroless root filesystem for one image: the Python runtime, one venv, and
exactly the shared libraries they load, with no shell, package manager, pip or compiler.

Runs in the build stage of Dockerfile.operator and Dockerfile.recorder, with the build
stage's Debian python3 (standard library only), as

    python3 images/runtime_tree.py VENV ROOTFS

The final stage is `FROM scratch` plus this tree, so the image carries nothing the program
does not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# The numeric user the images run as (Dockerfile USER); named so that tools that look it
# up (getpass, ps inside a debug container) find it.
USER_ID = 65532
# Standard-library parts no program of ours imports: tests, GUIs, installers, old tools.
STDLIB_DROP = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
               "pydoc_data", "venv", "distutils", "unittest/test", "__phello__")
# Files the runtime reads: the CA bundle (TLS to S3 and the apiserver), time zones, the
# resolver's rules, the MIME table.
ETC_FILES = ("etc/ssl/certs/ca-certificates.crt", "etc/nsswitch.conf", "etc/mime.types",
             "usr/share/zoneinfo")


def copy_path(source: Path, rootfs: Path) -> None:
    """Copy `source` to the same absolute path under `rootfs`, keeping symlinks as links
    and copying what they point to as well."""
    # Through the real directory: on a merged-/usr system /lib is a link to usr/lib, and
    # a library's relative links only resolve beside the file they name.
    source = Path(os.path.realpath(source.parent)) / source.name
    target = rootfs / source.relative_to("/")
    if target.exists() or target.is_symlink():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        link = os.readlink(source)
        target.symlink_to(link)
        copy_path((source.parent / link).resolve() if not os.path.isabs(link)
                  else Path(link), rootfs)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


def shared_libraries(binary: Path) -> set[Path]:
    """What the dynamic loader resolves for `binary`, as ldd prints it."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False,
                          timeout=60)
    if done.returncode != 0:  # not a dynamic executable (a static .so or a data file)
        return set()
    found = set()
    for line in done.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            path = words[words.index("=>") + 1]
            if path.startswith("/"):
                found.add(Path(path))
        elif words and words[0].startswith("/"):
            found.add(Path(words[0]))  # the loader itself
    if "not found" in done.stdout:
        raise SystemExit(f"{binary}: a shared library is missing:\n{done.stdout}")
    return found


def elf_files(root: Path) -> list[Path]:
    result = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    result.append(path)
    return result


def strip_stdlib(stdlib: Path) -> None:
    for name in STDLIB_DROP:
        shutil.rmtree(stdlib / name, ignore_errors=True)


def build(venv: Path, rootfs: Path) -> None:
    rootfs.mkdir(parents=True, exist_ok=True)
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if Path("/", top).is_symlink():
            (rootfs / top).symlink_to(os.readlink(Path("/", top)))
    interpreter = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    copy_path(interpreter, rootfs)
    for alias in ("/usr/bin/python3", f"/usr/bin/python{sys.version_info[0]}"
                  f".{sys.version_info[1]}"):
        if Path(alias).exists():
            copy_path(Path(alias), rootfs)
    copy_path(stdlib, rootfs)
    strip_stdlib(rootfs / stdlib.relative_to("/"))
    # Compiled once here: the root filesystem is read-only at run time, so a missing .pyc
    # would be recompiled on every start.
    subprocess.run([str(interpreter), "-m", "compileall", "-q", "-j", "0", str(venv)],
                   check=True, timeout=600)
    copy_path(venv, rootfs)
    libraries: set[Path] = set()
    for binary in [interpreter, *elf_files(rootfs / stdlib.relative_to("/")),
                   *elf_files(rootfs / venv.relative_to("/"))]:
        libraries |= shared_libraries(binary)
    for library in sorted(libraries):
        copy_path(library, rootfs)
    for name in ETC_FILES:
        if (Path("/") / name).exists():
            copy_path(Path("/") / name, rootfs)
    etc = rootfs / "etc"
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/sbin/nologin\n"
                                f"lucid:x:{USER_ID}:{USER_ID}:lucid:/nonexistent:/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nlucid:x:{USER_ID}:\n")
    # Mount points and the places a read-only root still needs.
    for directory in ("tmp", "proc", "sys", "dev", "etc/lucid", "var/spool/lucid"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    venv, rootfs = Path(argv[0]), Path(argv[1])
    if not (venv / "bin" / "python").exists():
        print(f"{venv} is not a venv", file=sys.stderr)
        return 2
    build(venv, rootfs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
