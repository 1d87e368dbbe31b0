"""The shared local stack answers like the real components it is made of."""

from __future__ import annotations

import io
import json
import socket
import uuid

import pytest
import yaml
from minio import Minio
from minio.error import S3Error

from lucid_devstack.stack import Stack

pytestmark = pytest.mark.stack

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.stacktest.lucid.dev"},
    "spec": {
        "group": "stacktest.lucid.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}],
    },
}


def test_kubectl_applies_a_crd_and_reads_it_back(stack: Stack):
    stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(WIDGET_CRD))
    stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/widgets.stacktest.lucid.dev")
    widget = {"apiVersion": "stacktest.lucid.dev/v1", "kind": "Widget",
              "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}}
    stack.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(widget))
    read = json.loads(stack.kubectl("get", "widget", "w1", "-n", "default", "-o", "json").stdout)
    assert read["spec"] == {"size": 3}
    version = json.loads(stack.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.35.4"


def test_rbac_is_enforced(stack: Stack):
    denied = stack.kubectl("get", "secrets", "-n", "kube-system",
                           "--as=system:serviceaccount:default:default", check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_minio_put_and_get(stack: Stack):
    minio = stack.minio.client()
    bucket = f"stack-test-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    payload = b"lucid" * 1000
    minio.put_object(bucket, "a/b.bin", io.BytesIO(payload), len(payload))
    response = minio.get_object(bucket, "a/b.bin")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()


def test_wrong_minio_credentials_are_refused(stack: Stack):
    wrong = Minio(stack.minio.endpoint, access_key=stack.minio.access_key,
                  secret_key="not-the-secret", secure=False)
    with pytest.raises(S3Error) as refused:
        wrong.list_buckets()
    assert refused.value.code in {"SignatureDoesNotMatch", "InvalidAccessKeyId"}


def test_desktop_is_reachable_over_rdp_port(stack: Stack):
    with socket.create_connection(("127.0.0.1", stack.desktop.rdp_port), timeout=5):
        pass
    image = stack.desktop.screenshot_rgb()
    assert image.size == (stack.desktop.width, stack.desktop.height)
