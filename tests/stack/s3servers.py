"""The S3 implementations the storage suites run on: the real MinIO and SeaweedFS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_devstack.minio import MinioServer
from lucid_devstack.seaweedfs import SeaweedServer

S3Server = MinioServer | SeaweedServer
KINDS = ["minio", "seaweedfs"]


def server(kind: str, workdir: Path) -> S3Server:
    return MinioServer(workdir) if kind == "minio" else SeaweedServer(workdir)


def running(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A started server of the kind the fixture is parametrised with; stopped afterwards."""
    started = server(request.param, factory.mktemp(request.param)).start()
    try:
        yield started
    finally:
        started.stop()
