"""Fixtures for end-to-end tests: CRD installed, the real operator running, a namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from lucid_common.api import GROUP, PLURAL
from lucid_devstack.operator_proc import STANDIN_SETTINGS, OperatorProcess
from lucid_devstack.stack import Stack
from tests.e2e.support import Sessions, has_default_sa, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def api(stack: Stack) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(stack.kube.kubeconfig))


@pytest.fixture(scope="session")
def crd(stack: Stack) -> None:
    stack.kubectl("apply", "-f", str(REPO / "crds"))
    stack.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  f"crd/{PLURAL}.{GROUP}")


@pytest.fixture(scope="module")
def operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    running = OperatorProcess(
        stack,
        settings={
            **STANDIN_SETTINGS,
            # The stand-in serves no /healthz: no liveness probe may stop it.
            "LUCID_RECORDER_METRICS_PORT": "0",
            "LUCID_TERMINATION_GRACE_SECONDS": "10",
            "LUCID_RETRY_BACKOFF_SECONDS": "1",
            "LUCID_RETRY_BACKOFF_MAX_SECONDS": "4",
            "LUCID_DELETE_TIMEOUT_SECONDS": "30",
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def recorder_operator(stack: Stack, crd: None) -> Iterator[OperatorProcess]:
    """The operator with the real recorder (its image, in containers)."""
    running = OperatorProcess(stack, settings={
        # Several recorders share the host's network: no fixed metrics port.
        "LUCID_RECORDER_METRICS_PORT": "0",
        "LUCID_TERMINATION_GRACE_SECONDS": "30",
        "LUCID_RETRY_BACKOFF_SECONDS": "1",
    }).start()
    yield running
    running.stop()


@pytest.fixture
def sessions(stack: Stack, api: client.ApiClient, crd: None) -> Iterator[Sessions]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    wait_for(lambda: has_default_sa(api, namespace), 30, f"default SA in {namespace}")
    made = Sessions(stack, api, namespace)
    made.standard_secrets()
    yield made
    # A session left behind (one kept Pending on purpose, say) would be taken up by the
    # next module's operator with that operator's settings, e.g. its fixed metrics port on
    # the host network, and collide with that module's own recorder: end them here.
    stack.kubectl("delete", PLURAL, "--all", "-n", namespace, "--wait=false", check=False)
