"""`make demo`: the local stack, the operator, and one RecordingSession driven like a user would.

It starts the stack, installs the CRD, runs the operator, creates the Secrets
(with a freshly generated auditor key pair), applies examples/session.yaml
(pointed at the local xrdp desktop), types into the desktop while the real
recorder records it, stops the session through its spec, then verifies,
decrypts and plays the recording back from MinIO. The last frame and a
contact sheet are left as PNGs in the printed directory.
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.proc import StackError, run
from lucid_devstack.stack import Stack, venv_bin

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "lucid-demo"
RECORD_SECONDS = 10


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def operator_settings() -> dict[str, str]:
    """The demo operator's settings.

    The local kubelet runs every pod on the host's network, so a fixed recorder metrics
    port (right on a cluster, where each pod has its own network namespace) would let only
    one recorder bind it: a second session would fail with `Address already in use`.
    Port 0 turns the recorders' /metrics and /healthz off, as the tests do.
    """
    return {"LUCID_RECORDER_METRICS_PORT": "0", "LUCID_TERMINATION_GRACE_SECONDS": "30"}


def secrets(stack: Stack, public_key_pem: str) -> dict[str, dict[str, str]]:
    """The Secrets examples/session.yaml refers to, by name, for the local stack."""
    return {
        "rdp-login": {"username": stack.desktop.username, "password": stack.desktop.password},
        "minio-creds": {"accessKey": stack.minio.access_key,
                        "secretKey": stack.minio.secret_key},
        "auditor-public-key": {"publicKey": public_key_pem},
    }


def secret_manifest(name: str, data: dict[str, str], namespace: str = NAMESPACE) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    })


def session_manifest(stack: Stack, name: str = "demo",
                     namespace: str = NAMESPACE) -> dict[str, Any]:
    """examples/session.yaml pointed at the local stack's desktop and MinIO."""
    manifest = yaml.safe_load((REPO / "examples" / "session.yaml").read_text())
    manifest["metadata"].update(name=name, namespace=namespace)
    target = manifest["spec"]["target"]
    target["port"] = stack.desktop.rdp_port
    target["tls"]["fingerprintSha256"] = stack.desktop.tls_fingerprint_sha256
    manifest["spec"]["storage"]["endpoint"] = stack.minio.endpoint
    return manifest


def wait_phase(stack: Stack, phase: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = stack.kubectl("get", "rsess", "demo", "-n", NAMESPACE,
                                "-o", "jsonpath={.status.phase}").stdout
        if current == phase:
            return
        time.sleep(1)
    raise StackError(f"session never reached {phase} within {timeout:.0f}s")


def walk_through(stack: Stack) -> None:
    say(f"local stack up in {stack.timings['total']:.1f}s (state and logs in {stack.workdir})")
    print(stack.kubectl("version").stdout)
    say("installing the RecordingSession CRD")
    print(stack.kubectl("apply", "-f", str(REPO / "crds")).stdout)
    stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/recordingsessions.lucid.dev")

    say("starting the operator")
    operator = OperatorProcess(stack, settings=operator_settings()).start()
    auditor = stack.workdir / "auditor-keys"
    try:
        say(f"generating the auditor's key pair in {auditor} (the private key never enters "
            "the cluster)")
        print(tool(stack, "lucid-seal", "keygen", "--out-dir", str(auditor)), end="")
        say("creating the namespace and the Secrets (RDP login, MinIO keys, recipient key)")
        stack.kubectl("create", "namespace", NAMESPACE)
        for name, data in secrets(stack, (auditor / "public.pem").read_text()).items():
            print(stack.kubectl("apply", "-f", "-", input_text=secret_manifest(name, data)).stdout,
                  end="")

        say("kubectl apply -f examples/session.yaml")
        print(stack.kubectl("apply", "-f", "-",
                            input_text=yaml.safe_dump(session_manifest(stack))).stdout)
        wait_phase(stack, "Recording", timeout=90)
        print(stack.kubectl("get", "rsess", "-n", NAMESPACE, "-o", "wide").stdout)
        say(f"recording for {RECORD_SECONDS}s while typing into the desktop")
        stack.desktop.run_workload(RECORD_SECONDS)
        print(stack.kubectl("get", "rsess", "-n", NAMESPACE, "-o", "wide").stdout)
        say("kubectl get rsess -l lucid.dev/project=lucid (spec.audit, mirrored into labels)")
        print(stack.kubectl("get", "rsess", "-A", "-l", "lucid.dev/project=lucid").stdout)
        pod = stack.kubectl("get", "rsess", "demo", "-n", NAMESPACE,
                            "-o", "jsonpath={.status.podName}").stdout
        say(f"kubectl logs {pod} --tail=5")
        print(stack.kubectl("logs", pod, "-n", NAMESPACE, "--tail=5").stdout)

        say("stopping through the spec (spec.state: Stopped)")
        stack.kubectl("patch", "rsess", "demo", "-n", NAMESPACE, "--type=merge",
                      "-p", '{"spec":{"state":"Stopped"}}')
        wait_phase(stack, "Completed", timeout=90)
        print(stack.kubectl("get", "rsess", "-n", NAMESPACE, "-o", "wide").stdout)
        print(stack.kubectl("describe", "rsess", "demo", "-n", NAMESPACE).stdout)
    finally:
        operator.stop()
    play_back(stack, auditor / "private.pem")
    say(f"done; logs are under {stack.workdir / 'logs'} and {stack.workdir}")


def tool(stack: Stack, *argv: str) -> str:
    """Run one of the project's CLIs as an auditor would, with the storage keys in env."""
    return run([str(venv_bin() / argv[0]), *argv[1:]], timeout=300, env={
        **stack.env(),
        "LUCID_S3_ACCESS_KEY": stack.minio.access_key,
        "LUCID_S3_SECRET_KEY": stack.minio.secret_key,
    })


def play_back(stack: Stack, private_key: Path) -> None:
    source = ["--endpoint", stack.minio.endpoint, "--bucket", "recordings", "--prefix", "demo",
              "--no-tls", "--session", f"{NAMESPACE}/demo", "--private-key", str(private_key)]
    segments = stack.workdir / "playback"
    say("lucid-seal verify (as the auditor, with the private key)")
    print(tool(stack, "lucid-seal", "verify", *source), end="")
    say(f"lucid-seal decrypt → {segments}")
    print(tool(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(segments)), end="")
    say("lucid-play info")
    print(tool(stack, "lucid-play", "info", str(segments)), end="")
    last, sheet = stack.workdir / "last-frame.png", stack.workdir / "contact-sheet.png"
    print(tool(stack, "lucid-play", "frame", str(segments), "--at", "end", "-o", str(last)),
          end="")
    print(tool(stack, "lucid-play", "contact-sheet", str(segments), "-o", str(sheet)), end="")
    say(f"the last frame is {last}; a contact sheet is {sheet}")


def main() -> int:
    stack = Stack.create(REPO / "out" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        stack.start()
        walk_through(stack)
    except StackError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        if stack.workdir.exists():
            print(stack.log_report(), file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
