"""The two images, built from the repo's Dockerfiles with podman: contents and budgets.

Budgets (uncompressed): recorder ≤ 300 MB, operator ≤ 200 MB; neither carries a compiler,
pip, or a shell, and each carries only its own product.
"""

from __future__ import annotations

import json

import pytest

from lucid_devstack import images, podman

pytestmark = pytest.mark.stack

BUDGET_MB = {"operator": 200, "recorder": 300}
# Must be importable in the image / must not be.
CARRIES = {"operator": ("lucid_operator", "lucid_common", "kopf", "kubernetes"),
           "recorder": ("lucid_recorder", "lucid_common", "lucid_native", "aardwolf",
                        "zstandard", "cryptography", "minio")}
# minio: the operator writes seals and signs STS requests with it since evidence-storage.
# kubernetes: the recorder has its own small client (lucid_recorder.kube); the package's
# generated models cost about 36 MiB of RSS.
LACKS = {"operator": ("lucid_recorder", "aardwolf", "zstandard", "PIL"),
         "recorder": ("lucid_operator", "kopf", "kubernetes")}
# Nothing of these may exist anywhere in either image.
FORBIDDEN = ("sh", "bash", "dash", "busybox", "gcc", "cc", "ld", "as", "cargo", "rustc",
             "apt", "apt-get", "dpkg", "pip", "pip3")
PROBE = """
import importlib.util, json, os, sys
found = {}
for top, dirs, files in os.walk('/'):
    if top.startswith(('/proc', '/sys', '/dev')):
        dirs[:] = []
        continue
    for name in files:
        if name in FORBIDDEN or name.startswith(('pip-', 'setuptools-')):
            found.setdefault(name, os.path.join(top, name))
    for name in dirs:
        if name in ('pip', 'setuptools', 'ensurepip'):
            found.setdefault(name, os.path.join(top, name))
print(json.dumps({'forbidden': found,
                  'importable': {m: importlib.util.find_spec(m) is not None for m in MODULES},
                  'uid': os.getuid(), 'gid': os.getgid(), 'python': sys.version.split()[0]}))
"""


# Run inside the recorder image: the segment writer's hot path, once through the native core
# (counting its calls) and once through the pure-Python reference; both must agree.
NATIVE_PROBE = """
import json, os, random, types
from lucid_recorder import native
from lucid_recorder.format import Rect, SegmentWriter, read_segment
import lucid_native
seen = {'implementation': native.implementation(), 'env': os.environ.get('LUCID_NATIVE'),
        'module': lucid_native.__file__}
calls = {}
def counted(name):
    real = getattr(lucid_native, name)
    def call(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return real(*args, **kwargs)
    return call
proxy = types.SimpleNamespace(**{n: counted(n) for n in dir(lucid_native) if not n.startswith('_')})
def segment(core):
    native.core = core
    rng = random.Random(7)
    writer = SegmentWriter(64, 48, 0, keyframe_interval_ns=40)
    for ts in range(1, 100):
        w, h = rng.randint(1, 64), rng.randint(1, 48)
        colours = [rng.randbytes(3) for _ in range(rng.choice((2, 300)))]
        rgb = b''.join(rng.choice(colours) for _ in range(w * h))
        writer.add(ts, Rect(rng.randint(0, 64 - w), rng.randint(0, 48 - h), w, h, rgb))
    return writer.finish()
native_bytes = segment(proxy)
reference_bytes = segment(None)
seen.update(calls=calls, identical=native_bytes == reference_bytes,
            records=len(read_segment(native_bytes).records))
print(json.dumps(seen))
"""


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    images.ensure_images()


def look_inside(kind: str) -> dict:
    script = (f"FORBIDDEN = {FORBIDDEN!r}\nMODULES = {CARRIES[kind] + LACKS[kind]!r}\n"
              + PROBE)
    done = podman.run(["run", "--rm", *podman.ULIMITS, "--read-only", "--cap-drop", "all",
                       "--network", "none", "--entrypoint", "python3", images.image_name(kind),
                       "-c", script], timeout=120)
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", images.KINDS)
def test_image_is_within_its_size_budget(kind: str):
    size_mb = images.image_size(kind) / 1e6
    print(f"{images.image_name(kind)}: {size_mb:.1f} MB uncompressed")
    assert size_mb <= BUDGET_MB[kind], f"{kind} image is {size_mb:.1f} MB"


@pytest.mark.parametrize("kind", images.KINDS)
def test_image_holds_its_own_product_and_nothing_else(kind: str):
    seen = look_inside(kind)
    assert seen["forbidden"] == {}, seen["forbidden"]
    assert seen["uid"] == seen["gid"] == 65532
    assert seen["python"].startswith("3.11.")
    importable = seen["importable"]
    assert all(importable[m] for m in CARRIES[kind]), importable
    assert not any(importable[m] for m in LACKS[kind]), importable


@pytest.mark.parametrize("kind", images.KINDS)
def test_image_has_no_shell_to_run(kind: str):
    done = podman.run(["run", "--rm", *podman.ULIMITS, "--entrypoint", "/bin/sh",
                       images.image_name(kind), "-c", "true"], timeout=120, check=False)
    assert done.returncode != 0
    assert b"no such file or directory" in done.stderr.lower()


def test_recorder_image_carries_the_auditor_tools():
    done = podman.run(["run", "--rm", *podman.ULIMITS, "--read-only", "--network", "none",
                       "--entrypoint", "lucid-seal", images.image_name("recorder"), "--help"],
                      timeout=120)
    assert b"verify" in done.stdout


def run_recorder_python(script: str, *env: str) -> dict:
    done = podman.run(["run", "--rm", *podman.ULIMITS, "--read-only", "--cap-drop", "all",
                       "--network", "none", *(f"--env={e}" for e in env),
                       "--entrypoint", "python3", images.image_name("recorder"), "-c", script],
                      timeout=120)
    return json.loads(done.stdout)


def test_recorder_image_runs_the_native_core():
    seen = run_recorder_python(NATIVE_PROBE)
    # Built in the image's build stage and insisted on by the image (LUCID_NATIVE=1).
    assert seen["env"] == "1"
    assert seen["implementation"] == "native"
    assert seen["module"].startswith("/opt/lucid/"), seen["module"]
    # The writer's hot path went through the extension, and gave the reference's bytes.
    assert seen["calls"].get("encode_rect", 0) > 0, seen["calls"]
    assert seen["identical"], "native and reference segments differ inside the image"
    assert seen["records"] > 0


def test_recorder_image_still_runs_the_reference_on_request():
    seen = run_recorder_python(
        "import json; from lucid_recorder import native; "
        "print(json.dumps({'implementation': native.implementation()}))", "LUCID_NATIVE=0")
    assert seen == {"implementation": "reference"}


def test_a_second_build_with_unchanged_inputs_builds_nothing():
    for kind in images.KINDS:
        assert images.is_current(kind)
        assert images.build_image(kind) == 0.0
