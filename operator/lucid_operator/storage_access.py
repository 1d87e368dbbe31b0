"""The operator's storage side with scoped credentials (thin I/O around sts.py).

With LUCID_STORAGE_SCOPED_CREDENTIALS the recorder's keys may only write, so the
operator does what needs more, with the session's long-lived key, before the pod
starts: it makes sure the bucket exists (created with object lock) and, for
spec.retention, that it has object lock; then it asks STS for the session's keys and
keeps them in the per-session Secret, renewing them while the session runs. Every
problem becomes the StorageCredentials condition, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from lucid_common.api import RecordingSessionSpec
from lucid_operator.builders import SessionRef
from lucid_operator.conditions import ConditionUpdate
from lucid_operator.kube import Kube
from lucid_operator.settings import OperatorSettings
from lucid_operator.storage_tls import StorageProblem, pool, spec_ca, transport_problem
from lucid_operator.sts import (
    StsError,
    assume_role,
    credentials_secret,
    expires_at,
    renewal_due,
    secret_name,
    session_policy,
    session_prefix,
)

STORAGE_CREDENTIALS = "StorageCredentials"
_NO_LOCK = {"ObjectLockConfigurationNotFoundError", "NotImplemented"}
__all__ = ["StorageProblem", "check_bucket", "ensure_session_credentials"]


def _long_lived_key(kube: Kube, namespace: str, spec: RecordingSessionSpec) -> tuple[str, str]:
    ref = spec.storage.credentials_secret_ref
    data = kube.read_secret(namespace, ref.name)
    if data is None:
        raise StorageProblem("SecretNotFound", f'Secret "{ref.name}" not found')
    try:
        return (base64.b64decode(data[ref.access_key_key]).decode(),
                base64.b64decode(data[ref.secret_key_key]).decode())
    except (KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise StorageProblem("SecretKeyMissing", f'Secret "{ref.name}" does not hold a '
                             "readable access key and secret key") from exc


def _client(spec: RecordingSessionSpec, access: str, secret: str, ca_pem: str | None
            ) -> Minio:
    tls = spec.storage.tls
    http = pool(ca_pem, tls.insecure_skip_verify, connect=5.0, read=15.0)
    return Minio(spec.storage.endpoint, access_key=access, secret_key=secret,
                 secure=tls.enabled, http_client=http, cert_check=not tls.insecure_skip_verify)


def check_bucket(client: Minio, spec: RecordingSessionSpec) -> None:
    """The bucket exists (made with object lock when createBucket allows), and has object
    lock when spec.retention asks. Raises StorageProblem with the condition's reason."""
    bucket = spec.storage.bucket
    try:
        if not client.bucket_exists(bucket):
            if not spec.storage.create_bucket:
                raise StorageProblem("BucketMissing", f"bucket {bucket} does not exist and "
                                     "storage.createBucket is false")
            client.make_bucket(bucket, object_lock=True)
        if spec.retention is not None:
            client.get_object_lock_config(bucket)
    except S3Error as exc:
        if exc.code in _NO_LOCK:
            raise StorageProblem("ObjectLockMissing", f"bucket {bucket} has no S3 Object Lock "
                                 f"({exc.code}), so spec.retention cannot be honoured: use a "
                                 "bucket created with object lock enabled") from exc
        raise StorageProblem("StorageRefused", f"the object store refused {exc.code} on "
                             f"bucket {bucket}") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise transport_problem(exc, spec) from exc


def ensure_session_credentials(kube: Kube, settings: OperatorSettings, session: dict[str, Any],
                               ref: SessionRef, spec: RecordingSessionSpec,
                               now: dt.datetime | None = None) -> tuple[ConditionUpdate, str]:
    """(condition, what happened: "" | "Issued" | "Renewed"). Never raises for the store's
    answers: they become a False condition."""
    now = now or dt.datetime.now(dt.UTC)
    name = secret_name(ref.name)
    existing = kube.read_secret_object(ref.namespace, name)
    expiry = expires_at(existing)
    duration = settings.storage_credentials_duration_seconds
    if existing is not None and not renewal_due(expiry, now, duration):
        return ConditionUpdate(STORAGE_CREDENTIALS, True, "Issued",
                               f"write-only keys for this session in Secret {name}, valid "
                               f"until {expiry:%Y-%m-%dT%H:%M:%SZ}"), ""
    try:
        access, secret = _long_lived_key(kube, ref.namespace, spec)
        # Read once: the bucket check and STS trust the same bundle.
        ca_pem = spec_ca(kube, ref.namespace, spec)
        check_bucket(_client(spec, access, secret, ca_pem), spec)
        prefix = session_prefix(spec.storage.key_prefix, ref.namespace, ref.name, ref.uid)
        creds = assume_role(
            spec.storage.endpoint, access, secret,
            session_policy(spec.storage.bucket, prefix, spec.retention is not None),
            secure=spec.storage.tls.enabled, duration=duration,
            session_name=f"lucid-{ref.namespace}-{ref.name}",
            role_arn=settings.storage_sts_role_arn, ca_cert_data=ca_pem,
            insecure_skip_verify=spec.storage.tls.insecure_skip_verify)
    except StorageProblem as exc:
        return ConditionUpdate(STORAGE_CREDENTIALS, False, exc.reason, str(exc)), ""
    except StsError as exc:
        if isinstance(exc.__cause__, urllib3.exceptions.HTTPError):
            problem = transport_problem(exc.__cause__, spec)
            return ConditionUpdate(STORAGE_CREDENTIALS, False, problem.reason,
                                   f"STS AssumeRole: {problem}"), ""
        reason = "STSUnsupported" if exc.unsupported else "AssumeRoleFailed"
        hint = (": the store offers no STS; use one that does (MinIO, Ceph RGW, AWS) or set "
                "LUCID_STORAGE_SCOPED_CREDENTIALS=false (chart: "
                "operator.storageScopedCredentials) to give recorders the session's storage "
                "Secret") if exc.unsupported else ""
        return ConditionUpdate(STORAGE_CREDENTIALS, False, reason, f"{exc}{hint}"), ""
    kube.put_secret(credentials_secret(session, creds))
    what = "Renewed" if existing is not None else "Issued"
    return ConditionUpdate(STORAGE_CREDENTIALS, True, "Issued",
                           f"write-only keys for this session in Secret {name}, valid until "
                           f"{creds.expiration:%Y-%m-%dT%H:%M:%SZ}"), what
