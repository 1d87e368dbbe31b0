"""`kubectl logs` on the local stack: apiserver → the local kubelet's HTTPS /containerLogs.

Issue 16, item 8: before, every `kubectl logs` failed with `lookup lucid-local ... no such
host`. These drive kubectl as a user would: current and previous run, --tail,
--timestamps, --since, --limit-bytes, -f, and the errors of a container with no log yet.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lucid_devstack.kube import NODE_NAME
from lucid_devstack.stack import Stack
from tests.e2e.support import wait_for

pytestmark = pytest.mark.stack

KUBECTL = str(Path(sys.executable).parent / "kubectl")
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


@pytest.fixture
def namespace(stack: Stack) -> Iterator[str]:
    name = f"logs-{uuid.uuid4().hex[:6]}"
    stack.kubectl("create", "namespace", name)
    wait_for(lambda: stack.kubectl("get", "serviceaccount", "default", "-n", name,
                                   check=False).returncode == 0, 30, "default ServiceAccount")
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false")


def pod(stack: Stack, namespace: str, name: str, script: str, **spec: Any) -> None:
    """A one-container pod running `script`; each volume is mounted at /<its name>."""
    mounts = [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in spec.get("volumes", [])]
    manifest = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"containers": [{"name": "main", "image": "process.local/unused",
                                         "command": ["sh", "-c", script],
                                         "volumeMounts": mounts}], **spec}}
    stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest))


def status(stack: Stack, namespace: str, name: str) -> dict[str, Any]:
    done = stack.kubectl("get", "pod", name, "-n", namespace, "-o", "json")
    return json.loads(done.stdout).get("status") or {}


def logs(stack: Stack, namespace: str, *args: str) -> str:
    return stack.kubectl("logs", "-n", namespace, *args).stdout


# A container that counts its runs in an emptyDir, which outlives restarts: run 1 fails,
# run 2 stays up.
COUNTING = ('n=$(cat /work/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /work/n; '
            'echo "run $n starting"; '
            'if [ $n -lt 2 ]; then echo "run $n failing"; exit 1; fi; '
            'echo "run $n up"; exec sleep 300')


def test_logs_of_the_current_and_the_previous_run(stack: Stack, namespace: str):
    pod(stack, namespace, "counting", COUNTING, restartPolicy="OnFailure",
        volumes=[{"name": "work", "emptyDir": {}}])
    wait_for(lambda: (lambda s: s if s.get("containerStatuses") and
                      s["containerStatuses"][0]["restartCount"] == 1 and
                      "running" in s["containerStatuses"][0]["state"] else None)(
        status(stack, namespace, "counting")), 60, "the second run")
    wait_for(lambda: "run 2 up" in logs(stack, namespace, "counting"), 30, "run 2 up")

    current = logs(stack, namespace, "counting")
    previous = logs(stack, namespace, "counting", "--previous")
    print(f"$ kubectl logs counting\n{current}$ kubectl logs counting --previous\n{previous}")
    assert current == "run 2 starting\nrun 2 up\n"
    assert previous == "run 1 starting\nrun 1 failing\n"
    assert logs(stack, namespace, "counting", "--tail=1") == "run 2 up\n"
    assert logs(stack, namespace, "counting", "--limit-bytes=5") == "run 2"
    assert logs(stack, namespace, "counting", "-c", "main", "--since=1h") == current
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert logs(stack, namespace, "counting", f"--since-time={future}") == ""

    stamped = logs(stack, namespace, "counting", "--timestamps").splitlines()
    print("$ kubectl logs counting --timestamps\n" + "\n".join(stamped))
    parsed = [STAMPED.match(line) for line in stamped]
    assert all(parsed), stamped
    assert [m.group(2) for m in parsed if m] == ["run 2 starting", "run 2 up"]
    times = [dt.datetime.fromisoformat(m.group(1)[:26] + "+00:00") for m in parsed if m]
    started = dt.datetime.fromisoformat(
        status(stack, namespace, "counting")["containerStatuses"][0]["state"]["running"]
        ["startedAt"].replace("Z", "+00:00"))
    assert times == sorted(times)
    # The stamp is when the line reached the log: after the run began (second precision).
    assert times[0] >= started - dt.timedelta(seconds=1), (times, started)
    assert times[-1] <= dt.datetime.now(dt.UTC)


def test_follow_streams_lines_while_the_container_runs_and_ends_with_it(stack: Stack,
                                                                          namespace: str):
    pod(stack, namespace, "ticking",
        "echo tick 1; "
        "while [ ! -e /work/go ]; do sleep 0.2; done; echo tick 2; echo tick 3",
        restartPolicy="Never", volumes=[{"name": "work", "emptyDir": {}}])
    wait_for(lambda: status(stack, namespace, "ticking").get("phase") == "Running", 60,
             "ticking running")
    follow = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(stack.kube.kubeconfig), "logs", "-f", "ticking",
         "-n", namespace], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        # The first line arrives while the container is still waiting for /work/go: the
        # log is streamed, not handed over when the container ends.
        assert follow.stdout.readline() == "tick 1\n"
        assert follow.poll() is None
        assert status(stack, namespace, "ticking").get("phase") == "Running"
        # The pod's emptyDir, as the local kubelet keeps it: let the container go on.
        (pod_dir,) = (stack.kubelet.workdir / "pods").glob(f"{namespace}_ticking_*")
        (pod_dir / "volumes" / "work" / "go").write_text("")
        rest, errors = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
    print(f"$ kubectl logs -f ticking\ntick 1\n{rest}{errors}")
    assert follow.returncode == 0, errors
    assert rest == "tick 2\ntick 3\n"


def test_a_container_without_a_log_yet_says_why(stack: Stack, namespace: str):
    pod(stack, namespace, "stuck", "echo never",
        volumes=[{"name": "s", "secret": {"secretName": "missing"}}])
    done = wait_for(lambda: (lambda d: d if "waiting to start" in d.stderr else None)(
        stack.kubectl("logs", "stuck", "-n", namespace, check=False)), 30, "a refusal")
    print(f"$ kubectl logs stuck\n{done.stderr}")
    assert done.returncode != 0
    assert ('Error from server (BadRequest): container "main" in pod "stuck" is waiting to '
            "start: ContainerCreating") in done.stderr
    previous = stack.kubectl("logs", "stuck", "-n", namespace, "--previous", check=False)
    assert 'previous terminated container "main" in pod "stuck" not found' in previous.stderr


def test_the_kubelet_endpoint_is_advertised_and_answers_only_the_apiserver(stack: Stack):
    node = json.loads(stack.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port > 0
    pki = stack.kube.workdir / "pki"
    url = f"https://127.0.0.1:{port}/containerLogs/default/none/main"

    def get(cert: str | None) -> tuple[int, str]:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if cert:
            context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
        try:
            with urllib.request.urlopen(url, context=context, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # The serving certificate is the stack CA's, for 127.0.0.1 (the apiserver checks it).
    # An admin of the cluster is still not the apiserver: 403, as without nodes/log.
    assert get("admin") == (403, "Forbidden (user=lucid-admin, verb=get, resource=nodes, "
                                 "subresource=log)")
    assert get("apiserver-kubelet-client") == (404, 'pod "none" does not exist')
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        get(None)  # no client certificate: no TLS session at all
