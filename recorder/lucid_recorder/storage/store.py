"""The object store (MinIO/S3) behind a thin, typed interface.

Every call is one attempt with bounded HTTP timeouts and no hidden urllib3
retries; retrying is the caller's (retry.py), so backoff, deadlines and
metrics live in one place. Client errors are translated into the typed
errors of errors.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.credentials.providers import Provider
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE
from minio.retention import Retention as ObjectRetention

from lucid_common.api import Seal
from lucid_common.api.spec import Retention
from lucid_common.evidence import parse_seal
from lucid_common.layout import MANIFEST_NAME, MAX_MANIFEST_BYTES
from lucid_common.tls import pem_certificates, untrusted_certificate
from lucid_recorder.sealing.compression import MAX_PLAINTEXT_BYTES
from lucid_recorder.sealing.container import MAX_HEADER_BYTES, ChunkHeader
from lucid_recorder.sealing.errors import ChunkFormatError, ObjectReadError
from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.manifest import Manifest, SessionIdentity
from lucid_recorder.sealing.sealer import ChunkInfo
from lucid_recorder.storage.errors import (
    BucketMissingError,
    ObjectLockUnavailableError,
    ObjectTooLargeError,
    StorageAuthError,
    StorageError,
    StoragePermissionError,
    TransientStorageError,
    UploadMismatchError,
)
from lucid_recorder.storage.journal import SessionState
from lucid_recorder.storage.layout import (
    CHUNK_CONTENT_TYPE,
    MANIFEST_CONTENT_TYPE,
    SessionLayout,
    chunk_metadata,
    info_from_metadata,
)
from lucid_recorder.storage.recovery import recover_state
from lucid_recorder.storage.versions import Version, rewrites

T = TypeVar("T")
log = logging.getLogger("lucid.recorder.storage")

# No chunk the recorder writes is larger (header, payload of at most 512 MiB plus zstd's
# worst case, tag, signature); anything larger is not read into memory.
MAX_CHUNK_OBJECT_BYTES = MAX_PLAINTEXT_BYTES + MAX_PLAINTEXT_BYTES // 128 + (1 << 20)
MAX_SEAL_BYTES = 256 * 1024
MAX_SEALS = 100_000

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
RECORDER_PERMISSIONS = "s3:PutObject, s3:GetObject, s3:ListBucket, s3:GetBucketLocation"

AUTH_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "AuthorizationHeaderMalformed",
})
# Requests that would fail the same way every time; anything else is treated
# as transient, because giving up on a chunk is the worse mistake.
PERMANENT_CODES = frozenset({
    "InvalidBucketName", "InvalidObjectName", "KeyTooLongError", "EntityTooLarge",
    "MetadataTooLarge", "InvalidArgument", "InvalidRequest", "MethodNotAllowed",
    "NotImplemented", "InvalidStorageClass",
})


# What stores answer for an object without retention, or a bucket without object lock.
RETENTION_ABSENT_CODES = frozenset({
    "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError",
    "InvalidRequest", "NoSuchKey", "MethodNotAllowed", "NotImplemented",
})


def translate(exc: BaseException, what: str) -> StorageError:
    """The typed error for a client exception raised while doing `what`."""
    if isinstance(exc, S3Error):
        code = exc.code or "Unknown"
        if code in AUTH_CODES:
            return StorageAuthError(
                f"object store rejected the credentials ({code}) while {what}: check the "
                "access key and secret key in storage.credentialsSecretRef"
            )
        if code == "NoSuchBucket":
            return BucketMissingError(f"bucket {exc.bucket_name or '?'} does not exist ({what})")
        if code == "AccessDenied":
            return StoragePermissionError(
                f"access denied while {what}: the recorder needs {RECORDER_PERMISSIONS}"
            )
        if code in PERMANENT_CODES:
            return StorageError(f"object store refused the request ({code}) while {what}: "
                                f"{exc.message}")
        return TransientStorageError(f"object store error {code} while {what}: {exc.message}")
    if isinstance(exc, ServerError):
        return TransientStorageError(f"object store HTTP {exc.status_code} while {what}")
    if isinstance(exc, InvalidResponseError):
        return TransientStorageError(f"unexpected response while {what}: {exc}")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        untrusted = untrusted_certificate(exc)
        if untrusted is not None:
            # Still retried: a store's certificate may be mid-rotation, and giving up on
            # a chunk is the worse mistake. The message says what to fix meanwhile.
            return TransientStorageError(
                f"object store's TLS certificate not trusted ({untrusted}) while {what}: "
                "check the CA it is verified against (the recorder: storage.tls.caSecretRef; "
                "lucid-seal and lucid-play: --ca-file)")
        return TransientStorageError(f"object store unreachable while {what}: {exc}")
    return StorageError(f"unexpected {type(exc).__name__} while {what}: {exc}")


def make_client(
    endpoint: str,
    access_key: str,
    secret_key: str,
    *,
    secure: bool,
    ca_file: Path | None = None,
    insecure_skip_verify: bool = False,
    credentials: Provider | None = None,
    ca_source: str | None = None,
) -> Minio:
    """A Minio client whose every request is bounded and never retried by urllib3.

    `credentials`, when given, is asked for the keys on every request (a rotated Secret
    reaches a running recorder that way) and `access_key`/`secret_key` are ignored.
    `ca_file` is checked to hold PEM certificates here (StorageError naming `ca_source`,
    else the file), and read by ssl again for each new connection, so a rotated bundle
    applies without a restart.
    """
    if ca_file is not None:
        check_ca_file(ca_file, ca_source or str(ca_file))
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False,
        maxsize=4,
        cert_reqs="CERT_NONE" if insecure_skip_verify else "CERT_REQUIRED",
        ca_certs=str(ca_file) if ca_file is not None else None,
    )
    if credentials is not None:
        return Minio(endpoint, credentials=credentials, secure=secure, http_client=http,
                     cert_check=not insecure_skip_verify)
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                 http_client=http, cert_check=not insecure_skip_verify)


def check_ca_file(path: Path, source: str) -> None:
    try:
        pem_certificates(path.read_bytes())
    except OSError as exc:
        raise StorageError(f"the CA bundle of {source} is not readable at {path}: "
                           f"{exc.strerror}") from exc
    except ValueError as exc:
        raise StorageError(f"{source} holds no PEM certificate: the CA bundle must be PEM "
                           "(-----BEGIN CERTIFICATE-----)") from exc


# What a store answers to object-lock requests it cannot honour: AWS and MinIO say
# ObjectLockConfigurationNotFoundError for a bucket made without the lock, others
# NotImplemented or an InvalidRequest/InvalidArgument naming the lock.
NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "NotImplemented"})


def object_retention(retention: Retention | None, now: dt.datetime) -> ObjectRetention | None:
    """The Object Lock retention of an object written at `now` under spec.retention."""
    if retention is None:
        return None
    return ObjectRetention(retention.s3_mode, retention.retain_until(now))


def no_object_lock(exc: S3Error) -> bool:
    """Whether the store refused a request because the bucket or store has no object lock."""
    code = exc.code or ""
    if code in NO_LOCK_CODES:
        return True
    return code in {"InvalidRequest", "InvalidArgument", "InvalidBucketState"} and \
        "lock" in (exc.message or "").lower()


def lock_missing_message(bucket: str, detail: str) -> str:
    return (f"bucket {bucket} has no S3 Object Lock ({detail}), so spec.retention cannot be "
            "honoured: use a bucket created with object lock enabled (MinIO: mc mb "
            "--with-lock; Lucid creates new buckets that way when storage.createBucket is "
            "true), or remove spec.retention from a new session")


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class ObjectStore:
    def __init__(
        self,
        client: Minio,
        bucket: str,
        layout: SessionLayout,
        retention: Retention | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.layout = layout
        self.retention = retention
        self.clock = clock

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, what) from exc

    # -- bucket ------------------------------------------------------------------

    def ensure_bucket(self, create: bool) -> None:
        """The bucket exists (created with object lock if it may be created), and has
        object lock when spec.retention asks for it."""
        what = f"checking bucket {self.bucket}"
        try:
            exists = self._call(what, lambda: self.client.bucket_exists(self.bucket))
        except StoragePermissionError:
            # Write-only session keys (the operator's scoped credentials) may not even ask;
            # the operator checked the bucket with its own key, and a put into a missing
            # bucket still fails as BucketMissingError.
            log.info("may not check bucket %s; assuming whoever issued these keys did",
                     self.bucket)
            return
        if not exists:
            if not create:
                raise BucketMissingError(
                    f"bucket {self.bucket} does not exist and storage.createBucket is false"
                )
            self._make_bucket()
        if self.retention is not None:
            self.check_object_lock()

    def _make_bucket(self) -> None:
        # Always with object lock (it also turns versioning on, so an overwritten object
        # keeps its earlier version): a bucket made without it can never get retention
        # later on MinIO. Only a store that cannot lock at all gets a plain bucket, and
        # only for sessions without spec.retention.
        try:
            self._create(object_lock=True)
        except S3Error as exc:
            if not no_object_lock(exc) and exc.code not in {"InvalidRequest", "InvalidArgument"}:
                raise translate(exc, f"creating bucket {self.bucket}") from exc
            if self.retention is not None:
                raise ObjectLockUnavailableError(lock_missing_message(
                    self.bucket, f"the store refused to create it with a lock: {exc.code}"
                )) from exc
            log.warning("the store cannot create bucket %s with object lock (%s); creating it "
                        "without: sessions with spec.retention cannot use it", self.bucket,
                        exc.code)
            try:
                self._create(object_lock=False)
            except S3Error as plain:
                raise translate(plain, f"creating bucket {self.bucket}") from plain
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"creating bucket {self.bucket}") from exc

    def _create(self, object_lock: bool) -> None:
        try:
            self.client.make_bucket(self.bucket, object_lock=object_lock)
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return  # created concurrently by another recorder: fine
            if exc.code == "AccessDenied":
                raise BucketMissingError(
                    f"bucket {self.bucket} does not exist and the credentials may not create "
                    "it (s3:CreateBucket, and for the object lock Lucid creates buckets with "
                    "s3:PutBucketObjectLockConfiguration and s3:PutBucketVersioning)"
                ) from exc
            raise

    def check_object_lock(self, doing: str = "") -> bool:
        """Raise ObjectLockUnavailableError unless the bucket has object lock enabled.

        True: the lock is there. False: these credentials may not read the configuration.
        """
        try:
            self.client.get_object_lock_config(self.bucket)
        except S3Error as exc:
            if no_object_lock(exc):
                detail = exc.code or "no lock configuration"
                raise ObjectLockUnavailableError(lock_missing_message(
                    self.bucket, f"{doing}: {detail}" if doing else detail)) from exc
            if exc.code == "AccessDenied":
                # Credentials scoped to writing (docs/storage.md) may not read the bucket's
                # configuration; the first put then tells, with the same message.
                log.info("may not read the object lock configuration of %s; the first "
                         "upload will show whether it has one", self.bucket)
                return False
            raise translate(exc, f"reading the object lock configuration of {self.bucket}"
                            ) from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"reading the object lock configuration of {self.bucket}"
                            ) from exc
        return True

    # -- writing -----------------------------------------------------------------

    def _put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        checksum = _sha256_b64(data)
        headers = {**metadata, "x-amz-checksum-sha256": checksum}
        # This is the one place objects are put: every chunk, manifest and seal gets the
        # session's retention here, dated from its own upload.
        retention = object_retention(self.retention, self.clock())
        try:
            result = self._call(f"uploading {key}", lambda: self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                metadata=headers, retention=retention,
                # One part: a multipart ETag is not the object's MD5 and gains nothing here.
                part_size=max(len(data), MIN_PART_SIZE),
            ))
        except StorageError as exc:
            cause = exc.__cause__
            if retention is not None and isinstance(cause, S3Error):
                if no_object_lock(cause):
                    raise ObjectLockUnavailableError(lock_missing_message(
                        self.bucket, f"uploading {key}: {cause.code}")) from cause
                # SeaweedFS says only "Invalid Request": ask the bucket why. When the
                # credentials may not ask, the lock headers are still the likely cause.
                if cause.code == "InvalidRequest" and \
                        not self.check_object_lock(f"uploading {key}"):
                    raise ObjectLockUnavailableError(lock_missing_message(
                        self.bucket, f"uploading {key}: the store refused the retention "
                        f"headers ({cause.code}) and its lock configuration is not readable "
                        "with these credentials")) from cause
            raise
        # The store verified the body against x-amz-checksum-sha256 before
        # answering; check that it echoes ours, or else the ETag's MD5.
        echoed = result.http_headers.get("x-amz-checksum-sha256") if result.http_headers else None
        if echoed is not None:
            if echoed != checksum:
                raise UploadMismatchError(f"{key}: store reports another sha256 than was sent")
            return
        etag = (result.etag or "").strip('"')
        if len(etag) == 32 and etag != hashlib.md5(data, usedforsecurity=False).hexdigest():
            raise UploadMismatchError(f"{key}: store reports another MD5 than was sent")

    def put_chunk(self, seq: int, data: bytes, info: ChunkInfo | None) -> None:
        """Upload one sealed chunk (one attempt)."""
        metadata = chunk_metadata(self.layout.session.uid, info) if info is not None else {}
        self._put(self.layout.chunk_key(seq), data, CHUNK_CONTENT_TYPE, metadata)

    def put_manifest(self, manifest: Manifest) -> None:
        self._put(self.layout.manifest_key, manifest.to_json(), MANIFEST_CONTENT_TYPE,
                  {"lucid-complete": "true" if manifest.complete else "false"})

    # -- reading -----------------------------------------------------------------

    def _get(self, key: str, offset: int = 0, length: int = 0) -> bytes | None:
        def call() -> bytes | None:
            try:
                response = self.client.get_object(self.bucket, key, offset=offset,
                                                  length=length)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    return None
                if exc.code == "InvalidRange":
                    return b""  # a ranged read of an empty object
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        return self._call(f"reading {key}", call)

    def _get_bounded(self, key: str, limit: int, what: str) -> bytes | None:
        """The object, or None when absent; ManifestTooLarge-style StorageError past `limit`.

        The read itself is capped too: a size that changes between stat and read (or a
        store that lies about it) cannot make this hold more than `limit` + 1 bytes.
        """
        data = self._get(key, 0, limit + 1)
        if data is not None and len(data) > limit:
            size = self._call(f"inspecting {key}",
                              lambda: self.client.stat_object(self.bucket, key)).size
            raise ObjectTooLargeError(
                f"{what} {key} is {size} bytes, more than the {limit} bytes it may have: "
                "not read")
        return data

    def get_manifest(self) -> Manifest | None:
        data = self.get_manifest_bytes()
        return Manifest.from_json(data) if data is not None else None

    def get_manifest_bytes(self) -> bytes | None:
        """manifest.json as stored, unparsed (the browser player checks it itself)."""
        return self._get_bounded(self.layout.manifest_key, MAX_MANIFEST_BYTES, "manifest")

    def rewritten(self) -> list[str] | None:
        """Objects of the session whose earlier versions differ from the latest or are hidden
        by a delete marker (storage.versions); None when the store will not list versions
        (no permission, no versioning support): then nothing can be said."""
        def call() -> list[Version]:
            listed = self.client.list_objects(self.bucket, prefix=self.layout.root,
                                              recursive=True, include_version=True)
            return [Version(name=(o.object_name or "").removeprefix(self.layout.root),
                            version_id=o.version_id or "null", etag=o.etag or "",
                            delete_marker=bool(o.is_delete_marker),
                            latest=str(o.is_latest).lower() == "true",
                            modified=o.last_modified) for o in listed]
        try:
            listing = call()
        except S3Error as exc:
            if exc.code in {"AccessDenied", "NotImplemented", "InvalidRequest"}:
                log.info("the store will not list object versions of %s (%s)",
                         self.layout.root, exc.code)
                return None
            raise translate(exc, f"listing versions of {self.layout.root}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"listing versions of {self.layout.root}") from exc
        return rewrites(listing, frozenset({MANIFEST_NAME}))

    def seals(self) -> list[tuple[str, Seal | str]]:
        """The operator's seal objects, by name: each parsed, or why it could not be."""
        def call() -> list[str]:
            objects = self.client.list_objects(self.bucket, prefix=self.layout.seals_prefix,
                                               recursive=True)
            names: list[str] = []
            for o in objects:
                names.append(o.object_name or "")
                if len(names) > MAX_SEALS:
                    break
            return names
        found: list[tuple[str, Seal | str]] = []
        for key in self._call(f"listing {self.layout.seals_prefix}", call):
            short = key.removeprefix(self.layout.root)
            if self.layout.parse_seal_key(key) is None:
                found.append((short, "not a seal name the operator writes"))
                continue
            try:
                data = self._get_bounded(key, MAX_SEAL_BYTES, "seal")
            except ObjectTooLargeError as exc:
                found.append((short, str(exc)))
                continue
            if data is None:
                continue  # deleted since the listing: the anchor check catches a rollback
            try:
                found.append((short, parse_seal(data)))
            except ValueError as exc:
                found.append((short, f"not a seal: {' '.join(str(exc).split())[:200]}"))
        return found

    def retention_of(self, key: str) -> tuple[str, str] | None:
        """(mode, retain-until, RFC 3339) of the object's S3 Object Lock retention, if any."""
        def call() -> tuple[str, str] | None:
            try:
                found = self.client.get_object_retention(self.bucket, key)
            except S3Error as exc:
                if exc.code in RETENTION_ABSENT_CODES:
                    return None
                raise
            if found is None or found.retain_until_date is None:
                return None
            until = found.retain_until_date.astimezone(dt.UTC).isoformat()
            return str(found.mode), until.replace("+00:00", "Z")
        return self._call(f"reading the retention of {key}", call)

    def get_chunk(self, seq: int) -> bytes | None:
        return self._get(self.layout.chunk_key(seq))

    def chunk_seqs(self) -> list[int]:
        return sorted(self.chunk_listing()[0])

    def chunk_listing(self) -> tuple[dict[int, int], list[str]]:
        """({seq: size} of the chunk objects, names under chunks/ that are no chunk name)."""
        def call() -> tuple[dict[int, int], list[str]]:
            objects = self.client.list_objects(self.bucket, prefix=self.layout.chunks_prefix,
                                               recursive=True)
            sizes: dict[int, int] = {}
            stray: list[str] = []
            for o in objects:
                name = o.object_name or ""
                seq = self.layout.parse_chunk_key(name)
                if seq is None:
                    stray.append(name.removeprefix(self.layout.root))
                else:
                    sizes[seq] = o.size or 0
            return sizes, stray
        return self._call(f"listing {self.layout.chunks_prefix}", call)

    def chunk_sizes(self) -> list[tuple[int, int]]:
        """(sequence number, object size) of every chunk object, ascending."""
        def call() -> list[tuple[int, int]]:
            objects = self.client.list_objects(self.bucket, prefix=self.layout.chunks_prefix,
                                               recursive=True)
            found = ((self.layout.parse_chunk_key(o.object_name or ""), o.size or 0)
                     for o in objects)
            return sorted((seq, size) for seq, size in found if seq is not None)
        return self._call(f"listing {self.layout.chunks_prefix}", call)

    def chunks(self) -> ChunkObjects:
        return ChunkObjects(self, self.chunk_seqs())

    def chunks_and_stray(self) -> tuple[ChunkObjects, list[str]]:
        """The chunk objects (sizes known, so an over-size object is never read) and the
        names under chunks/ that are not chunk names."""
        sizes, stray = self.chunk_listing()
        return ChunkObjects(self, list(sizes), sizes), stray

    def chunk_info(self, seq: int) -> tuple[ChunkInfo, KeyRecord]:
        """Facts about a stored chunk for recovery: from its header, read with a range GET."""
        key = self.layout.chunk_key(seq)
        stat = self._call(f"inspecting {key}", lambda: self.client.stat_object(self.bucket, key))
        head = self._get(key, 0, MAX_HEADER_BYTES)
        if head is None:
            raise StorageError(f"{key} disappeared while recovering")
        try:
            header = ChunkHeader.decode(head)
            info = info_from_metadata(dict(stat.metadata or {}))
        except (ChunkFormatError, ValueError):
            # Metadata stripped or header odd: hash the whole object instead.
            data = self.get_chunk(seq)
            if data is None:
                raise StorageError(f"{key} disappeared while recovering") from None
            header = ChunkHeader.decode(data)
            info = ChunkInfo.of(header, data)
        return info, header.key

    def recover_state(self) -> SessionState:
        """What the store holds of this session, for a recorder whose spool is empty."""
        return recover_state(self, self.layout.session)

def session_uids(client: Minio, bucket: str, prefix: str, namespace: str, name: str) -> list[str]:
    """UIDs of the stored sessions named namespace/name (one per re-creation)."""
    base = "/".join(p for p in (prefix.strip("/"), namespace, name) if p) + "/"
    try:
        return sorted(
            o.object_name[len(base):].strip("/")
            for o in client.list_objects(bucket, prefix=base)
            if o.is_dir and o.object_name
        )
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise translate(exc, f"listing {base}") from exc


SESSION_ARG_FORMS = "NAMESPACE/NAME or NAMESPACE/NAME/UID"


def session_arg_parts(value: str) -> list[str]:
    """The parts of a --session argument; ValueError naming the accepted forms."""
    parts = value.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"--session must be {SESSION_ARG_FORMS}")
    return parts


def stored_session(client: Minio, bucket: str, prefix: str, parts: list[str],
                   given: str) -> SessionIdentity:
    """The session the parts name; without a UID, the one stored under that name.

    ValueError when the name is ambiguous or absent; StorageError when the store can't list.
    """
    if len(parts) == 3:
        uid = parts[2]
    else:
        uids = session_uids(client, bucket, prefix, parts[0], parts[1])
        if len(uids) != 1:
            raise ValueError(f"--session {given} needs a UID; sessions stored: "
                             f"{', '.join(uids) or 'none'}")
        uid = uids[0]
    return SessionIdentity(namespace=parts[0], name=parts[1], uid=uid)


class ChunkObjects(Mapping[int, bytes]):
    """The session's chunk objects as a lazy mapping (seq in name -> bytes), for verify."""

    def __init__(self, store: ObjectStore, seqs: list[int],
                 sizes: Mapping[int, int] | None = None) -> None:
        self._store = store
        self._seqs = sorted(seqs)
        self._set = frozenset(seqs)
        self._sizes = sizes or {}

    def __getitem__(self, seq: int) -> bytes:
        """The object's bytes; KeyError when it vanished, ObjectReadError when unreadable."""
        if seq not in self._set:
            raise KeyError(seq)
        size = self._sizes.get(seq, 0)
        if size > MAX_CHUNK_OBJECT_BYTES:
            raise ObjectReadError(f"it is {size} bytes, more than any chunk can be")
        try:
            data = self._store.get_chunk(seq)
        except StorageError as exc:
            raise ObjectReadError(str(exc)) from exc
        if data is None:
            raise KeyError(seq)
        return data

    def __iter__(self) -> Iterator[int]:
        return iter(self._seqs)

    def __len__(self) -> int:
        return len(self._seqs)

    def __contains__(self, seq: object) -> bool:
        return seq in self._set
