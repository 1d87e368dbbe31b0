"""The object store (MinIO/S3) behind a thin, typed interface.

Every call is one attempt with bounded HTTP timeouts and no hidden urllib3
retries; retrying is the caller's (retry.py), so backoff, deadlines and
metrics live in one place. Client errors are translated into the typed
errors of errors.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE

from lucid_recorder.sealing.container import MAX_HEADER_BYTES, ChunkHeader
from lucid_recorder.sealing.errors import ChunkFormatError
from lucid_recorder.sealing.keys import KeyRecord
from lucid_recorder.sealing.manifest import Manifest
from lucid_recorder.sealing.sealer import ChunkInfo
from lucid_recorder.storage.errors import (
    BucketMissingError,
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

T = TypeVar("T")

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
) -> Minio:
    """A Minio client whose every request is bounded and never retried by urllib3."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False,
        maxsize=4,
        cert_reqs="CERT_NONE" if insecure_skip_verify else "CERT_REQUIRED",
        ca_certs=str(ca_file) if ca_file is not None else None,
    )
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                 http_client=http, cert_check=not insecure_skip_verify)


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class ObjectStore:
    def __init__(self, client: Minio, bucket: str, layout: SessionLayout) -> None:
        self.client = client
        self.bucket = bucket
        self.layout = layout

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, what) from exc

    # -- bucket ------------------------------------------------------------------

    def ensure_bucket(self, create: bool) -> None:
        what = f"checking bucket {self.bucket}"
        if self._call(what, lambda: self.client.bucket_exists(self.bucket)):
            return
        if not create:
            raise BucketMissingError(
                f"bucket {self.bucket} does not exist and storage.createBucket is false"
            )
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return  # created concurrently by another recorder: fine
            if exc.code == "AccessDenied":
                raise BucketMissingError(
                    f"bucket {self.bucket} does not exist and the credentials may not create "
                    "it (s3:CreateBucket)"
                ) from exc
            raise translate(exc, f"creating bucket {self.bucket}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"creating bucket {self.bucket}") from exc

    # -- writing -----------------------------------------------------------------

    def _put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        checksum = _sha256_b64(data)
        headers = {**metadata, "x-amz-checksum-sha256": checksum}
        result = self._call(f"uploading {key}", lambda: self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
            metadata=headers,
            # One part: a multipart ETag is not the object's MD5 and gains nothing here.
            part_size=max(len(data), MIN_PART_SIZE),
        ))
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
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        return self._call(f"reading {key}", call)

    def get_manifest(self) -> Manifest | None:
        data = self._get(self.layout.manifest_key)
        return Manifest.from_json(data) if data is not None else None

    def get_manifest_bytes(self) -> bytes | None:
        """manifest.json as stored, unparsed (the browser player checks it itself)."""
        return self._get(self.layout.manifest_key)

    def get_chunk(self, seq: int) -> bytes | None:
        return self._get(self.layout.chunk_key(seq))

    def chunk_seqs(self) -> list[int]:
        def call() -> list[int]:
            objects = self.client.list_objects(self.bucket, prefix=self.layout.chunks_prefix,
                                               recursive=True)
            seqs = (self.layout.parse_chunk_key(o.object_name or "") for o in objects)
            return sorted(s for s in seqs if s is not None)
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
        """What the store holds of this session, for a recorder whose spool is empty.

        Used after node loss: the new pod continues the sequence and hash chain
        after the last uploaded chunk instead of overwriting chunk 0.
        """
        manifest = self.get_manifest()
        state = SessionState(session=self.layout.session)
        if manifest is not None:
            state.started_at = manifest.started_at
            state.finalized = manifest.complete
            state.keys.update(manifest.key_records())
            state.chunks.update({c.seq: c.info() for c in manifest.chunks})
        for seq in self.chunk_seqs():
            if seq in state.chunks and state.chunks[seq].epoch in state.keys:
                continue
            info, key = self.chunk_info(seq)
            state.chunks[seq] = info
            state.keys.setdefault(key.epoch, key)
        return state


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


class ChunkObjects(Mapping[int, bytes]):
    """The session's chunk objects as a lazy mapping (seq in name -> bytes), for verify."""

    def __init__(self, store: ObjectStore, seqs: list[int]) -> None:
        self._store = store
        self._seqs = sorted(seqs)
        self._set = frozenset(seqs)

    def __getitem__(self, seq: int) -> bytes:
        if seq not in self._set:
            raise KeyError(seq)
        data = self._store.get_chunk(seq)
        if data is None:
            raise KeyError(seq)
        return data

    def __iter__(self) -> Iterator[int]:
        return iter(self._seqs)

    def __len__(self) -> int:
        return len(self._seqs)

    def __contains__(self, seq: object) -> bool:
        return seq in self._set
