"""Storage of sealed chunks: the local spool, MinIO/S3, and the manifest (docs/storage.md)."""

from lucid_recorder.storage.errors import (
    BucketMissingError,
    ChunksNotUploaded,
    ObjectLockUnavailableError,
    SpoolDiskFull,
    SpoolError,
    SpoolFull,
    SpoolMismatchError,
    StorageAuthError,
    StorageError,
    StoragePermissionError,
    TransientStorageError,
    UploadMismatchError,
    seq_ranges,
)
from lucid_recorder.storage.journal import DropRecord, SessionState
from lucid_recorder.storage.layout import SessionLayout
from lucid_recorder.storage.retry import RetriesExhausted, RetryPolicy, retry_call
from lucid_recorder.storage.spool import PendingChunk, Spool, SpoolPolicy
from lucid_recorder.storage.store import ChunkObjects, ObjectStore, make_client, translate
from lucid_recorder.storage.uploader import (
    DrainResult,
    manifest_of,
    publish_manifest,
    resume,
    upload_pending,
)

__all__ = [
    "BucketMissingError",
    "ChunkObjects",
    "ChunksNotUploaded",
    "DrainResult",
    "DropRecord",
    "ObjectLockUnavailableError",
    "ObjectStore",
    "PendingChunk",
    "RetriesExhausted",
    "RetryPolicy",
    "SessionLayout",
    "SessionState",
    "Spool",
    "SpoolDiskFull",
    "SpoolError",
    "SpoolFull",
    "SpoolMismatchError",
    "SpoolPolicy",
    "StorageAuthError",
    "StorageError",
    "StoragePermissionError",
    "TransientStorageError",
    "UploadMismatchError",
    "make_client",
    "manifest_of",
    "publish_manifest",
    "resume",
    "retry_call",
    "seq_ranges",
    "translate",
    "upload_pending",
]
