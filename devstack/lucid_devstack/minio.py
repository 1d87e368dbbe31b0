"""The real MinIO server on 127.0.0.1, with generated root credentials."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider
from minio.error import S3Error

from lucid_devstack import paths
from lucid_devstack.proc import Proc, free_port, http_ok


@dataclass
class MinioServer:
    workdir: Path
    access_key: str = field(default_factory=lambda: "lucid-" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    proc: Proc | None = None
    kind: str = "minio"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / "minio.log"

    def start(self) -> MinioServer:
        """Start, or restart on the same port and data after stop() (outage tests)."""
        if not self.port:
            self.port = free_port()
        console_port = free_port()
        self.proc = Proc("minio", [
            str(paths.binary("minio")), "server", str(self.workdir / "minio-data"),
            "--address", self.endpoint,
            "--console-address", f"127.0.0.1:{console_port}",
            "--quiet",
        ], self.log, env={
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }).start()
        self.proc.wait_until(self._live, timeout=60, what="/minio/health/ready")
        return self

    def _live(self) -> bool:
        return http_ok("127.0.0.1", self.port, "/minio/health/ready", None)

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False)

    def add_user(self, access_key: str, secret_key: str, actions: list[str]) -> None:
        """A user allowed `actions` (IAM names, s3:PutObject, ...) on every bucket."""
        admin = MinioAdmin(endpoint=self.endpoint, secure=False,
                           credentials=StaticProvider(self.access_key, self.secret_key))
        admin.user_add(access_key, secret_key)
        admin.policy_add(f"{access_key}-policy", policy={"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": ["arn:aws:s3:::*"], "Action": actions}]})
        admin.attach_policy([f"{access_key}-policy"], user=access_key)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def make_bucket(client: Minio, bucket: str, *, object_lock: bool = False,
                timeout: float = 60.0) -> None:
    """make_bucket, once MinIO has finished initialising: on a busy host its health check
    answers before it does (XMinioServerNotInitialized)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.make_bucket(bucket, object_lock=object_lock)
            return
        except S3Error as exc:
            if exc.code != "XMinioServerNotInitialized" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
