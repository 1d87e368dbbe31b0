"""The deployed recorder's memory: RSS of `lucid-recorder` as its pod runs it, and at import.

bench.rss measures the `Recording` pipeline in a child of its own; the pod's program
(`lucid_recorder.main`) adds what it imports and does around it (settings, the status
client, /metrics). Two measures of that program:

    .venv/bin/python -m bench.pod_rss imports [--runs 5]
        VmRSS of fresh interpreters after importing the recorder's entry point and nothing
        else (median of the runs), with a breakdown by the packages it pulls in.
    .venv/bin/python -m bench.pod_rss pod [--seconds 600]
        the local stack, the operator and one RecordingSession at the spec's defaults
        (32 bpp), the recorder pod run by the local kubelet from the venv
        (process.local/lucid-recorder, a host process), the scripted workload on the
        desktop; the recorder's RSS sampled once a second from Recording to the stop.

Both print one JSON object; neither is a timed assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024

# What `lucid_recorder.main` imports, in its order, heaviest contributors on their own:
# each step's RSS growth is what that package adds on top of the ones before it.
STEPS = ("urllib3", "prometheus_client", "pydantic", "lucid_common.api", "lucid_recorder.native",
         "cryptography.hazmat.primitives.ciphers.aead", "zstandard", "minio", "asn1tools",
         "aardwolf", "lucid_recorder.pipeline.recording", "lucid_recorder.main")
# The client the recorder used for its status writes before lucid_recorder.kube.
KUBERNETES = ("kubernetes.client", "kubernetes.config")

_PROBE = """
import importlib, json, os, sys, types
if os.environ.get('STUB_KUBERNETES'):
    # Empty stand-ins, so that an entry point importing the client imports without it.
    for name in ('kubernetes', 'kubernetes.client', 'kubernetes.config',
                 'kubernetes.client.exceptions'):
        sys.modules[name] = types.ModuleType(name)
    sys.modules['kubernetes'].client = sys.modules['kubernetes.client']
    sys.modules['kubernetes'].config = sys.modules['kubernetes.config']
    sys.modules['kubernetes.client.exceptions'].ApiException = Exception
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
steps = [('python', rss())]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append((name, rss()))
print(json.dumps({'steps': steps, 'modules': len(sys.modules),
                  'kubernetes': hasattr(sys.modules.get('kubernetes'), '__file__')}))
"""


def _probe(modules: tuple[str, ...], stub_kubernetes: bool = False) -> dict[str, Any]:
    env = {**os.environ, "STUB_KUBERNETES": "1" if stub_kubernetes else ""}
    done = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                          text=True, timeout=120, check=True, env=env)
    return json.loads(done.stdout)


def imports(runs: int) -> dict[str, Any]:
    """Median VmRSS after importing the entry point, alone and with the kubernetes client.

    main_kubernetes_stubbed: the entry point with empty modules standing in for the
    kubernetes client, i.e. without it even where the entry point imports it.
    """
    variants = {"main": ("lucid_recorder.main",),
                "main_with_kubernetes": ("lucid_recorder.main", *KUBERNETES),
                "main_kubernetes_stubbed": ("lucid_recorder.main",),
                "steps": STEPS}
    out: dict[str, Any] = {"runs": runs}
    for name, modules in variants.items():
        probes = [_probe(modules, stub_kubernetes=name == "main_kubernetes_stubbed")
                  for _ in range(runs)]
        if name == "steps":
            # Growth per step, median over the runs.
            labels = [label for label, _ in probes[0]["steps"]]
            totals = [statistics.median(p["steps"][i][1] for p in probes) / MIB
                      for i in range(len(labels))]
            growth = [total - (totals[i - 1] if i else 0.0) for i, total in enumerate(totals)]
            out["steps_mib"] = {label: round(g, 1)
                                for label, g in zip(labels, growth, strict=True)}
            continue
        finals = [p["steps"][-1][1] / MIB for p in probes]
        out[name] = {"median_mib": round(statistics.median(finals), 1),
                     "all_mib": [round(v, 1) for v in finals],
                     "modules": probes[0]["modules"],
                     "imports_kubernetes": probes[0]["kubernetes"]}
    out["kubernetes_delta_mib"] = round(out["main_with_kubernetes"]["median_mib"]
                                        - out["main_kubernetes_stubbed"]["median_mib"], 1)
    return out


def _recorder_pids(venv_recorder: str) -> list[int]:
    """The recorder processes under this process (the stack's kubelet runs in it)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = child.cmdline()
            # The interpreter running the console script (unshare and setpriv exec into it).
            if cmd[1:2] == [venv_recorder]:
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def pod(seconds: float, workdir: Path | None) -> dict[str, Any]:
    import psutil
    import yaml

    from lucid_devstack import demo
    from lucid_devstack.operator_proc import OperatorProcess
    from lucid_devstack.stack import Stack, venv_bin
    from lucid_recorder.sealing.keys import keygen

    stack = Stack.create(workdir)
    stack.start()
    namespace, name = demo.NAMESPACE, "rss"
    operator = OperatorProcess(stack, settings={
        **demo.operator_settings(), "LUCID_RECORDER_IMAGE": "process.local/lucid-recorder"})
    try:
        stack.kubectl("apply", "-f", str(demo.REPO / "crds"))
        stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                      "crd/recordingsessions.lucid.dev")
        operator.start()
        keys = keygen(stack.workdir / "auditor-keys")
        stack.kubectl("create", "namespace", namespace)
        for secret, data in demo.secrets(stack, keys.public.read_text()).items():
            stack.kubectl("apply", "-f", "-", input_text=demo.secret_manifest(secret, data))
        manifest = demo.session_manifest(stack, name=name, namespace=namespace)
        # The spec's defaults, as bench.rss records them.
        for key in ("chunking", "compression"):
            manifest["spec"].pop(key, None)
        stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest))

        def phase() -> str:
            return stack.kubectl("get", "rsess", name, "-n", namespace,
                                 "-o", "jsonpath={.status.phase}").stdout

        deadline = time.monotonic() + 120
        while phase() != "Recording":
            if time.monotonic() > deadline:
                raise RuntimeError("the session never reached Recording")
            time.sleep(1)
        venv_recorder = str(venv_bin() / "lucid-recorder")
        pids = _recorder_pids(venv_recorder)
        if len(pids) != 1:
            seen = [(c.name(), c.cmdline()) for c in psutil.Process().children(recursive=True)
                    if "recorder" in " ".join(c.cmdline())]
            raise RuntimeError(f"expected one recorder process, found {pids} in {seen}")
        recorder = psutil.Process(pids[0])
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(1.0):
                try:
                    samples.append(recorder.memory_info().rss / MIB)
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        steps = stack.desktop.run_workload(seconds)
        done.set()
        sampler.join()
        status = json.loads(stack.kubectl("get", "rsess", name, "-n", namespace,
                                          "-o", "json").stdout)["status"]
        stack.kubectl("patch", "rsess", name, "-n", namespace, "--type=merge",
                      "-p", '{"spec":{"state":"Stopped"}}')
        deadline = time.monotonic() + 120
        while phase() != "Completed":
            if time.monotonic() > deadline:
                raise RuntimeError("the session never reached Completed")
            time.sleep(1)
        pipeline = json.loads(stack.kubectl("get", "rsess", name, "-n", namespace,
                                            "-o", "json").stdout)["status"]["pipeline"]
    finally:
        operator.stop()
        stack.stop()
    ordered = sorted(samples)
    return {
        "seconds": seconds, "samples": len(samples), "workload_steps": steps,
        "rss_mib": {"median": round(statistics.median(samples), 1),
                    "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
                    "max": round(max(samples), 1), "min": round(min(samples), 1),
                    "first": round(samples[0], 1), "last": round(samples[-1], 1)},
        "pipeline_while_recording": {k: status.get("pipeline", {}).get(k)
                                     for k in ("state", "chunksStored", "bytesStored")},
        "pipeline_at_end": {k: pipeline.get(k) for k in ("state", "chunksStored", "bytesStored")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pod_rss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("imports").add_argument("--runs", type=int, default=5)
    pod_args = sub.add_parser("pod")
    pod_args.add_argument("--seconds", type=float, default=600.0)
    pod_args.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    result = imports(args.runs) if args.what == "imports" else pod(args.seconds, args.workdir)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
