"""Scoped, expiring storage credentials per session: STS AssumeRole with a session policy.

The operator holds the long-lived key (the session's storage.credentialsSecretRef) and is
the only one that uses it: it asks the store's STS for temporary keys whose inline session
policy allows writing below the session's own prefix and nothing else (no read, no delete,
no other prefix, no bucket configuration), and puts them into a Secret owned by the session,
which the recorder pod mounts instead of the shared one (docs/storage.md, "Scoped
credentials"). The effective rights are the intersection of the caller's and the session
policy's, so the temporary keys can never do more than the long-lived one.

Pure: the policy, the Secret, when to renew, reading the STS answer. Thin: one signed POST.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import urllib3
from minio.credentials import Credentials
from minio.signer import sign_v4_sts
from minio.time import to_amz_date

from lucid_common import contract
from lucid_common.layout import session_root
from lucid_operator.builders import session_credentials_secret
from lucid_operator.storage_tls import failure, pool

STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
# The annotation on the per-session Secret that says until when its keys are valid.
EXPIRES_ANNOTATION = "lucid.dev/credentials-expire-at"
# AWS's bounds on DurationSeconds; MinIO and SeaweedFS accept the same range.
MIN_DURATION = 900
MAX_DURATION = 43200


class StsError(Exception):
    """The store's STS refused or could not be reached. Messages never hold credentials."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key: str
    secret_key: str
    session_token: str
    expiration: dt.datetime

    def __repr__(self) -> str:  # never print the keys
        return f"TemporaryCredentials(expiration={self.expiration.isoformat()})"


def session_prefix(key_prefix: str, namespace: str, name: str, uid: str) -> str:
    return session_root(key_prefix, namespace, name, uid)


def session_policy(bucket: str, prefix: str, retention: bool) -> dict[str, Any]:
    """Write-only below `prefix`: PutObject (and PutObjectRetention when spec.retention
    asks for object lock), plus GetBucketLocation, which S3 clients call before any request
    to learn the bucket's region and which reveals nothing else."""
    if not prefix or not prefix.endswith("/") or "*" in prefix or "?" in prefix:
        raise ValueError(f"session prefix {prefix!r} must end with / and hold no wildcard")
    actions = ["s3:PutObject"] + (["s3:PutObjectRetention"] if retention else [])
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteOwnSessionOnly", "Effect": "Allow", "Action": actions,
         "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"]},
        {"Sid": "BucketRegion", "Effect": "Allow", "Action": ["s3:GetBucketLocation"],
         "Resource": [f"arn:aws:s3:::{bucket}"]},
    ]}


def secret_name(session_name: str) -> str:
    return session_credentials_secret(session_name)


def credentials_secret(session: dict[str, Any], creds: TemporaryCredentials
                       ) -> dict[str, Any]:
    """The per-session Secret with the three files the recorder reads
    (contract.STORAGE_*_FILE), owned by the session so it goes away with it."""
    meta = session["metadata"]
    data = {contract.STORAGE_ACCESS_KEY_FILE: creds.access_key,
            contract.STORAGE_SECRET_KEY_FILE: creds.secret_key,
            contract.STORAGE_SESSION_TOKEN_FILE: creds.session_token}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": secret_name(meta["name"]), "namespace": meta["namespace"],
            "labels": {"app.kubernetes.io/managed-by": "lucid",
                       "lucid.dev/session": meta["name"]},
            "annotations": {EXPIRES_ANNOTATION: creds.expiration.astimezone(dt.UTC)
                            .strftime("%Y-%m-%dT%H:%M:%SZ")},
            "ownerReferences": [{
                "apiVersion": session["apiVersion"], "kind": session["kind"],
                "name": meta["name"], "uid": meta["uid"], "controller": True,
                "blockOwnerDeletion": True}],
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def expires_at(secret: dict[str, Any] | None) -> dt.datetime | None:
    """When the keys in an existing per-session Secret expire; None if unknown."""
    if not secret:
        return None
    text = ((secret.get("metadata") or {}).get("annotations") or {}).get(EXPIRES_ANNOTATION)
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def renewal_due(expiration: dt.datetime | None, now: dt.datetime, duration: int) -> bool:
    """Renew once a third of the lifetime is left (at least five minutes): time for the
    kubelet to swap the mounted volume (up to a minute or two) and for retries, long before
    the recorder's keys would stop working."""
    if expiration is None:
        return True
    lead = max(duration / 3, 300)
    return expiration - now <= dt.timedelta(seconds=lead)


def parse_response(status: int, body: bytes) -> TemporaryCredentials:
    """Credentials from an AssumeRole answer, or StsError naming the STS error code."""
    try:
        root = ElementTree.fromstring(body) if body.strip() else None
    except ElementTree.ParseError:
        root = None
    if status != 200 or root is None:
        code = message = ""
        if root is not None:
            code = (root.findtext(f".//{STS_NS}Code") or root.findtext(".//Code") or "")
            message = (root.findtext(f".//{STS_NS}Message") or root.findtext(".//Message")
                       or "")
        unsupported = status in (404, 405, 501, 503) or code in {
            "NotImplemented", "InvalidAction", "UnknownOperation", "MethodNotAllowed",
            "ServiceUnavailable"}
        detail = f"{code}: {message}" if code else f"HTTP {status}"
        raise StsError(f"STS AssumeRole failed ({detail.strip()})", unsupported=unsupported)
    found = root.find(f".//{STS_NS}Credentials")
    if found is None:
        found = root.find(".//Credentials")
    if found is None:
        raise StsError("STS AssumeRole answered without credentials")

    def field(name: str) -> str:
        value = found.findtext(f"{STS_NS}{name}") or found.findtext(name)
        if not value:
            raise StsError(f"STS AssumeRole answered without {name}")
        return value

    expiration = dt.datetime.fromisoformat(field("Expiration").replace("Z", "+00:00"))
    return TemporaryCredentials(field("AccessKeyId"), field("SecretAccessKey"),
                                field("SessionToken"), expiration.astimezone(dt.UTC))


def assume_role(
    endpoint: str,
    access_key: str,
    secret_key: str,
    policy: dict[str, Any],
    *,
    secure: bool,
    duration: int,
    session_name: str,
    role_arn: str | None = None,
    ca_cert_data: str | None = None,
    insecure_skip_verify: bool = False,
    region: str = "",
) -> TemporaryCredentials:
    """One AssumeRole call with an inline session policy (bounded, never retried here).
    `ca_cert_data`: the PEM bundle to verify the store against (else the system's roots)."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(f"duration {duration} s is outside {MIN_DURATION}..{MAX_DURATION}")
    params = {"Action": "AssumeRole", "Version": "2011-06-15",
              "DurationSeconds": str(duration), "Policy": json.dumps(policy),
              "RoleSessionName": session_name[:64]}
    if role_arn:
        params["RoleArn"] = role_arn
    body = urllib.parse.urlencode(params)
    url = urllib.parse.urlsplit(f"{'https' if secure else 'http'}://{endpoint}/")
    now = dt.datetime.now(dt.UTC)
    headers = sign_v4_sts(
        method="POST", url=url, region=region,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Host": url.netloc,
                 "X-Amz-Date": to_amz_date(now)},
        credentials=Credentials(access_key, secret_key),
        content_sha256=hashlib.sha256(body.encode()).hexdigest(), date=now)
    http = pool(ca_cert_data, insecure_skip_verify, connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    try:
        response = http.request("POST", url.geturl(), body=body, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise StsError(f"STS at {endpoint}: {failure(exc)[1]}") from exc
    return parse_response(response.status, response.data)
