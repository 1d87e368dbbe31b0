"""Typed storage errors: the pipeline turns these into conditions on the RecordingSession.

Messages carry bucket and object names, never credentials.
"""


class StorageError(Exception):
    """Base class of everything the storage layer raises."""


class TransientStorageError(StorageError):
    """An outage or a server hiccup: retry with backoff."""


class UploadMismatchError(TransientStorageError):
    """The store acknowledged a put with another checksum than was sent: send it again."""


class StorageAuthError(StorageError):
    """The store rejected the credentials (unknown access key, wrong secret)."""


class StoragePermissionError(StorageError):
    """The credentials are valid but not allowed to do what the recorder needs."""


class BucketMissingError(StorageError):
    """The bucket does not exist and may not, or could not, be created."""


class ObjectLockUnavailableError(StorageError):
    """spec.retention asks for S3 Object Lock, and the bucket (or the store) has none."""


class SpoolError(StorageError):
    """Base class of local spool errors."""


class SpoolFull(SpoolError):
    """A sealed chunk would push the spool over its byte limit."""

    def __init__(self, needed: int, used: int, limit: int) -> None:
        self.needed, self.used, self.limit = needed, used, limit
        super().__init__(
            f"spool full: {needed} more bytes would exceed the limit of {limit} "
            f"({used} in use, waiting for uploads)"
        )


class SpoolMismatchError(SpoolError):
    """The spool directory holds another session's data."""


class SpoolDiskFull(SpoolError):
    """The spool's disk ran out of space while writing an already sealed chunk.

    The chunk's sequence number (and so its nonce) is spent: the caller keeps
    `chunk` and writes it again with Spool.put once there is room, and never
    seals its plaintext a second time.
    """

    def __init__(self, chunk: object, reason: str) -> None:
        self.chunk = chunk
        super().__init__(f"spool disk full: no room for chunk {getattr(chunk, 'seq', '?')} "
                         f"({reason})")
