"""The recorder's in-cluster client (lucid_recorder.kube): request building and answers.

Sending is proven on the real kube-apiserver by the recording e2e tests, which read the
status.pipeline the recorder patches through it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lucid_recorder import kube


def test_paths_name_the_custom_object_and_its_status():
    assert kube.custom_object_path("lucid.dev", "v1alpha1", "team-a", "recordingsessions",
                                   "s1") == \
        "/apis/lucid.dev/v1alpha1/namespaces/team-a/recordingsessions/s1"
    assert kube.custom_object_path("lucid.dev", "v1alpha1", "team-a", "recordingsessions",
                                   "s1", "status").endswith("/recordingsessions/s1/status")


def test_a_name_cannot_reach_another_path():
    path = kube.custom_object_path("g", "v1", "ns", "things", "../../secrets/x?y")
    assert path == "/apis/g/v1/namespaces/ns/things/..%2F..%2Fsecrets%2Fx%3Fy"


def test_status_writes_are_json_merge_patches():
    body = {"status": {"pipeline": {"state": "Capturing", "chunksStored": 3}}}
    request = kube.merge_patch("/apis/x/status", body)
    assert (request.method, request.path, request.content_type) == \
        ("PATCH", "/apis/x/status", "application/merge-patch+json")
    assert request.body is not None and json.loads(request.body) == body
    headers = request.headers("tok")
    assert headers["Content-Type"] == "application/merge-patch+json"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["Accept"] == "application/json"


def test_a_get_has_no_body_and_the_token_lives_only_in_the_headers():
    request = kube.get("/apis/x")
    assert (request.method, request.body, request.content_type) == ("GET", None, None)
    assert "Content-Type" not in request.headers("secret-token")
    assert "secret-token" not in repr(request)


def test_error_answers_carry_status_reason_and_the_status_message():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
              "message": 'recordingsessions.lucid.dev "s1" not found', "code": 404}
    with pytest.raises(kube.KubeApiError) as raised:
        kube.decode(404, "Not Found", json.dumps(status).encode())
    assert (raised.value.status, raised.value.reason) == (404, "Not Found")
    assert str(raised.value) == '404 Not Found: recordingsessions.lucid.dev "s1" not found'


@pytest.mark.parametrize("body", [b"<html>proxy says no</html>", b"", b'{"kind": "Pod"}'])
def test_an_error_body_that_is_no_status_is_left_out(body: bytes):
    error = kube.api_error(403, "Forbidden", body)
    assert (error.status, error.message, str(error)) == (403, "", "403 Forbidden")


def test_a_long_status_message_is_cut():
    status = {"kind": "Status", "message": "x" * 5000}
    error = kube.api_error(422, "Unprocessable Entity", json.dumps(status).encode())
    assert len(error.message) == kube.MESSAGE_LIMIT


def test_answers_decode_as_json():
    assert kube.decode(200, "OK", b'{"spec": {"state": "Stopped"}}') == \
        {"spec": {"state": "Stopped"}}
    assert kube.decode(204, "No Content", b"") is None
    with pytest.raises(kube.KubeApiError, match="not JSON") as raised:
        kube.decode(200, "OK", b"not json")
    assert raised.value.status == 200


def test_the_api_address_comes_from_the_service_env():
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert kube.api_address(env) == ("10.96.0.1", 443)
    with pytest.raises(kube.KubeConfigError, match="not running in a pod"):
        kube.api_address({"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    with pytest.raises(kube.KubeConfigError, match="not running in a pod"):
        kube.api_address({**env, "KUBERNETES_SERVICE_HOST": ""})
    with pytest.raises(kube.KubeConfigError, match="not a port number"):
        kube.api_address({**env, "KUBERNETES_SERVICE_PORT": "https"})


ENV = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}


def _account(tmp_path: Path, token: str = "t1", ca: str = "PEM") -> Path:
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_text(ca)
    return tmp_path


@pytest.mark.parametrize(("token", "ca", "missing"), [
    ("", "PEM", "service account token"), ("t1", "", "service account CA")])
def test_a_pod_without_token_or_ca_is_refused_at_start(tmp_path: Path, token: str, ca: str,
                                                       missing: str):
    account = _account(tmp_path, token, ca)
    with pytest.raises(kube.KubeConfigError, match=f"no {missing} at"):
        kube.InClusterClient.from_pod(ENV, account)


def test_the_token_is_read_again_for_every_call(tmp_path: Path):
    """Bound service account tokens rotate in place: a kept token would expire."""
    account = _account(tmp_path, "first\n")
    client = kube.InClusterClient.from_pod(ENV, account)
    assert client._token() == "first"
    (account / "token").write_text("rotated")
    assert client._token() == "rotated"
    (account / "token").write_text("")
    with pytest.raises(kube.KubeConfigError, match="empty"):
        client._token()


def test_every_call_has_a_timeout_and_no_redirect(tmp_path: Path):
    client = kube.InClusterClient.from_pod(ENV, _account(tmp_path))
    timeout = client._pool.timeout
    assert (timeout.connect_timeout, timeout.read_timeout) == (5.0, 15.0)
    assert client._pool.retries.redirect == 0


def test_the_recorder_runs_without_the_kubernetes_package():
    """Its generated models cost the recorder about 36 MiB of RSS (bench.pod_rss)."""
    probe = ("import sys, lucid_recorder.main\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
