"""Pre-flight checks of a session: referenced Secrets and keys, and RDP reachability.

The original session service ran the same checks (`_validate_rdp_config`)
before it let a session start.
"""

from __future__ import annotations

import socket

from lucid_common.api import RecordingSessionSpec
from lucid_operator.builders import required_secret_keys
from lucid_operator.conditions import REFERENCES_RESOLVED, TARGET_REACHABLE, ConditionUpdate
from lucid_operator.kube import Kube


def check_references(kube: Kube, namespace: str, spec: RecordingSessionSpec) -> ConditionUpdate:
    """Every referenced Secret exists and holds the keys. Values are never read into messages."""
    problems: list[str] = []
    reason = "SecretKeyMissing"
    for secret, keys in sorted(required_secret_keys(spec).items()):
        data = kube.read_secret(namespace, secret)
        if data is None:
            problems.append(f'Secret "{secret}" not found')
            reason = "SecretNotFound"
            continue
        absent = sorted(keys - set(data))
        if absent:
            problems.append(f'Secret "{secret}" has no key {", ".join(map(repr, absent))}')
    if problems:
        return ConditionUpdate(REFERENCES_RESOLVED, False, reason, "; ".join(problems))
    return ConditionUpdate(REFERENCES_RESOLVED, True, "AllFound",
                           "all referenced Secrets and keys exist")


def check_reachable(host: str, port: int, timeout: float) -> ConditionUpdate:
    """A TCP connect to the RDP target, with a timeout; nothing is sent."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        return ConditionUpdate(TARGET_REACHABLE, False, "ConnectTimeout",
                               f"no answer from {host}:{port} within {timeout:g}s")
    except OSError as exc:
        return ConditionUpdate(TARGET_REACHABLE, False, "ConnectFailed",
                               f"cannot connect to {host}:{port}: {exc.strerror or exc}")
    return ConditionUpdate(TARGET_REACHABLE, True, "Connected", f"{host}:{port} accepts TCP")
