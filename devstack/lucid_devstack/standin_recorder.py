"""A stand-in recorder for operator lifecycle tests: no RDP, just the pod's contract.

It reports `pipeline.state: Capturing` on its own session through the status
subresource with the pod's own service account (so the per-session Role is
exercised for real), then waits for SIGTERM, reports `Finalized` and exits 0,
the way the real recorder flushes.

For the failure and retry paths, a session whose name ends in `-exit-<N>`
makes it exit with code N right after reporting: the pod carries nothing but
what the operator puts in it, so the name is the only test-controlled input.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from kubernetes import client, config

from lucid_common import contract

GROUP, VERSION, PLURAL = "lucid.dev", "v1alpha1", "recordingsessions"
TIMEOUT = (5.0, 15.0)


def _patch_pipeline(api: client.CustomObjectsApi, state: str) -> None:
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, os.environ[contract.ENV_SESSION_NAMESPACE], PLURAL,
        os.environ[contract.ENV_SESSION_NAME], {"status": {"pipeline": {"state": state}}},
        _request_timeout=TIMEOUT,
    )


def main() -> int:
    for required in (contract.ENV_RDP_USERNAME, contract.ENV_RDP_PASSWORD):
        if not os.environ.get(required):
            print(f"stand-in recorder: {required} is not set", file=sys.stderr)
            return 2
    for name in (contract.STORAGE_ACCESS_KEY_FILE, contract.STORAGE_SECRET_KEY_FILE):
        if not (Path(contract.STORAGE_CREDENTIALS_DIR) / name).is_file():
            print(f"stand-in recorder: {contract.STORAGE_CREDENTIALS_DIR}/{name} is not mounted",
                  file=sys.stderr)
            return 2
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _patch_pipeline(api, contract.PIPELINE_CAPTURING)
    print("stand-in recorder: capturing", flush=True)
    name = os.environ[contract.ENV_SESSION_NAME]
    exit_code = int(name.rsplit("-exit-", 1)[1]) if "-exit-" in name else 0
    if exit_code:
        print(f"stand-in recorder: cannot reach the target (simulated); exit {exit_code}",
              flush=True)
        return exit_code
    stop.wait()
    _patch_pipeline(api, contract.PIPELINE_FINALIZED)
    print("stand-in recorder: SIGTERM received, flushed, exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
