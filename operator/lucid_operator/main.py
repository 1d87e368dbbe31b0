"""`lucid-operator`: runs the kopf operator with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import random
import sys

import kopf
from kubernetes import client
from prometheus_client import start_http_server
from pydantic import ValidationError

from lucid_common.api import GROUP
from lucid_common.logs import configure_logging
from lucid_operator import handlers  # noqa: F401 - importing registers the handlers
from lucid_operator.kube import Kube, load_config
from lucid_operator.settings import OperatorSettings
from lucid_operator.signing_key import load_or_create

log = logging.getLogger("lucid.operator")


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    # Progress and diff-base live in annotations: status stays the API's own.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Events are posted explicitly with reasons; kopf's per-log-line events would be noise.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "lucid-operator"
    settings.execution.max_workers = ours.handler_threads
    settings.queueing.worker_limit = ours.worker_limit
    settings.queueing.idle_timeout = ours.worker_idle_timeout_seconds
    settings.persistence.consistency_timeout = ours.consistency_timeout_seconds
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Replicas elect an active one through a peering object (the chart creates it
    # and kopf's peering CRDs); a single replica runs standalone without them.
    settings.peering.standalone = ours.standalone
    settings.peering.mandatory = not ours.standalone
    settings.peering.priority = ours.priority
    settings.peering.clusterwide = not ours.namespaces
    if not ours.standalone:
        settings.peering.name = ours.peering_name


def size_connection_pool(threads: int) -> None:
    """Give every handler thread its own pooled API connection.

    The client's default pool is 5 per CPU; with more handler threads than that, each
    busy moment discards connections ("Connection pool is full" warnings) and the next
    call pays a new TLS handshake on both ends (bench/operator_scale measured this).
    """
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0,
                                                threads + 4)
    client.Configuration.set_default(configuration)


def main() -> int:
    try:
        ours = OperatorSettings()
    except ValidationError as exc:
        print(f"lucid-operator: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(ours.log_format, ours.log_level)
    if ours.priority is None:
        # Replicas of one Deployment share their settings; kopf pauses every peer of
        # equal priority, so each replica draws its own.
        ours.priority = 0 if ours.standalone else random.randint(1, 2**31 - 1)
    load_config()
    size_connection_pool(ours.handler_threads)
    if ours.metrics_port:
        start_http_server(ours.metrics_port)

    @kopf.on.startup()
    def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: object) -> None:
        configure_kopf(settings, ours)
        memo.kube = Kube()
        memo.settings = ours
        # Before any handler runs: every seal is signed with this key.
        memo.signer = load_or_create(memo.kube, ours)
        log.info("operator starting: %s", "cluster-wide" if not ours.namespaces
                 else f"namespaces {', '.join(ours.namespaces)}")

    kopf.run(
        clusterwide=not ours.namespaces,
        namespaces=ours.namespaces,
        standalone=ours.standalone,
        priority=ours.priority,
        peering_name=None if ours.standalone else ours.peering_name,
        liveness_endpoint=(f"http://0.0.0.0:{ours.health_port}/healthz"
                           if ours.health_port else None),
        loop=asyncio.new_event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
