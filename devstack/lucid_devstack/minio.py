"""The real MinIO server on 127.0.0.1, with generated root credentials.

With `tls=True` it serves HTTPS only, with a certificate for 127.0.0.1 and localhost
signed by a private CA of its own (`ca_pem`), as a store behind a company CA would:
nothing trusts it unless told to.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider
from minio.error import S3Error

from lucid_devstack import paths
from lucid_devstack.certs import LocalCA
from lucid_devstack.proc import Proc, free_port, http_ok

MINIO_CA_NAME = "lucid-devstack-minio-ca"


@dataclass
class MinioServer:
    workdir: Path
    access_key: str = field(default_factory=lambda: "lucid-" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    proc: Proc | None = None
    kind: str = "minio"
    tls: bool = False

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def certs_dir(self) -> Path:
        return self.workdir / "certs"

    @property
    def ca_file(self) -> Path:
        """The private CA's certificate (PEM) that signed the server's; TLS only."""
        if not self.tls:
            raise ValueError("this MinIO serves plain HTTP: it has no CA")
        return self.workdir / "pki" / "ca.crt"

    @property
    def ca_pem(self) -> str:
        return self.ca_file.read_text()

    def _issue_certificate(self) -> None:
        """MinIO reads public.crt and private.key from --certs-dir. Kept across restarts."""
        if (self.certs_dir / "public.crt").exists():
            return
        pair = LocalCA(self.workdir / "pki", MINIO_CA_NAME).issue(
            "minio", "127.0.0.1", dns=("localhost",), ips=("127.0.0.1",), server=True)
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pair.key, self.certs_dir / "private.key")
        (self.certs_dir / "private.key").chmod(0o600)
        shutil.copyfile(pair.cert, self.certs_dir / "public.crt")

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / "minio.log"

    def start(self) -> MinioServer:
        """Start, or restart on the same port and data after stop() (outage tests)."""
        if not self.port:
            self.port = free_port()
        console_port = free_port()
        certs: list[str] = []
        if self.tls:
            self._issue_certificate()
            certs = ["--certs-dir", str(self.certs_dir)]
        self.proc = Proc("minio", [
            str(paths.binary("minio")), "server", str(self.workdir / "minio-data"),
            "--address", self.endpoint,
            "--console-address", f"127.0.0.1:{console_port}",
            *certs,
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
        context = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        return http_ok("127.0.0.1", self.port, "/minio/health/ready", context)

    def _http(self) -> urllib3.PoolManager | None:
        """With TLS, the minio library's default pool (same timeouts and retries), made
        to trust the private CA; plain HTTP keeps the library's default as it is."""
        if not self.tls:
            return None
        return urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=60.0, read=60.0), maxsize=10,
            cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca_file),
            retries=urllib3.Retry(total=5, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=self.tls, http_client=self._http())

    def add_user(self, access_key: str, secret_key: str, actions: list[str]) -> None:
        """A user allowed `actions` (IAM names, s3:PutObject, ...) on every bucket."""
        admin = MinioAdmin(endpoint=self.endpoint, secure=self.tls, http_client=self._http(),
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
