"""Writes a seal into the session's bucket, next to its manifest (thin S3 edge).

The object is `<root>/seals/<counter:08d>.json`: a new object per seal, never an
overwrite, so retention (spec.retention, docs/storage.md) keeps every one. The
operator uses the session's storage credentials Secret, the same the recorder gets.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io

import urllib3
from minio import Minio
from minio.error import MinioException
from minio.retention import Retention as ObjectRetention

from lucid_common.api import RecordingSessionSpec, Seal
from lucid_common.api.spec import Retention
from lucid_common.evidence import seal_json, seal_key
from lucid_common.layout import session_root
from lucid_operator.kube import Kube
from lucid_operator.storage_tls import StorageProblem, failure, pool, spec_ca

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
CONTENT_TYPE = "application/vnd.lucid.seal+json"


class SealStoreError(Exception):
    """The seal could not be written; the message says why, never a credential."""


def _secret_value(kube: Kube, namespace: str, name: str, key: str) -> str:
    data = kube.read_secret(namespace, name)
    if data is None or key not in data:
        raise SealStoreError(f'Secret "{name}" (or its key {key!r}) is missing')
    return base64.b64decode(data[key]).decode()


def client_for(kube: Kube, namespace: str, spec: RecordingSessionSpec) -> Minio:
    storage = spec.storage
    creds = storage.credentials_secret_ref
    access = _secret_value(kube, namespace, creds.name, creds.access_key_key)
    secret = _secret_value(kube, namespace, creds.name, creds.secret_key_key)
    tls = storage.tls
    try:
        ca = spec_ca(kube, namespace, spec)
    except StorageProblem as exc:
        raise SealStoreError(str(exc)) from exc
    http = pool(ca, tls.insecure_skip_verify, connect=CONNECT_TIMEOUT, read=READ_TIMEOUT,
                maxsize=2)
    return Minio(storage.endpoint, access_key=access, secret_key=secret, secure=tls.enabled,
                 http_client=http, cert_check=not tls.insecure_skip_verify)


def put_seal(kube: Kube, namespace: str, spec: RecordingSessionSpec, seal: Seal) -> str:
    """Store the seal (one attempt) with the session's credentials; returns its key."""
    client = client_for(kube, namespace, spec)
    return store_seal(client, spec.storage.bucket, spec.storage.key_prefix, seal,
                      retention=spec.retention)


def seal_retention(retention: Retention | None, now: dt.datetime) -> ObjectRetention | None:
    """A seal is retained like the chunks and manifests it vouches for (spec.retention)."""
    if retention is None:
        return None
    return ObjectRetention(retention.s3_mode, retention.retain_until(now))


def store_seal(client: Minio, bucket: str, key_prefix: str, seal: Seal, *,
               retention: Retention | None = None) -> str:
    root = session_root(key_prefix, seal.session.namespace, seal.session.name, seal.session.uid)
    key = seal_key(root, seal.counter)
    body = seal_json(seal)
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    try:
        client.put_object(bucket, key, io.BytesIO(body), len(body), content_type=CONTENT_TYPE,
                          metadata={"x-amz-checksum-sha256": checksum},
                          retention=seal_retention(retention, dt.datetime.now(dt.UTC)))
    except MinioException as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        raise SealStoreError(f"object store refused seal {key} ({code})") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise SealStoreError(f"object store {failure(exc)[1]} while writing seal "
                             f"{key}") from exc
    return key
