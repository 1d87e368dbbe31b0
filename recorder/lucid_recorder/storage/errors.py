"""Typed storage errors: the pipeline turns these into conditions on the RecordingSession.

Messages carry bucket and object names, never credentials.
"""

from lucid_common.api import human_bytes


class StorageError(Exception):
    """Base class of everything the storage layer raises."""


class TransientStorageError(StorageError):
    """An outage or a server hiccup: retry with backoff."""


class ObjectTooLargeError(StorageError):
    """An object (manifest, seal) larger than it can legitimately be: not read."""


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


def seq_ranges(seqs: list[int] | set[int], limit: int = 256) -> str:
    """Sequence numbers as ranges, "3-7, 9", cut with "…" to at most `limit` characters."""
    parts: list[str] = []
    ordered = sorted(set(seqs))
    start = previous = None
    for seq in [*ordered, None]:
        if seq is not None and previous is not None and seq == previous + 1:
            previous = seq
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seq
    text = ", ".join(parts)
    return text if len(text) <= limit else text[:limit - 1].rsplit(", ", 1)[0] + ", …"


class ChunksNotUploaded(StorageError):
    """The recorder had to stop (its grace period ran out) before the store took everything.

    `seqs` are the sealed chunks still in the spool: they are lost with the pod. With none
    left, only the final manifest could not be written.
    """

    def __init__(self, seqs: list[int], nbytes: int, cause: str) -> None:
        self.seqs = sorted(seqs)
        self.nbytes = nbytes
        self.cause = cause
        self.ranges = seq_ranges(self.seqs)
        if self.seqs:
            count = len(self.seqs)
            text = (f"{count} sealed chunk{'s' if count != 1 else ''} not uploaded "
                    f"(seq {self.ranges}, {human_bytes(nbytes)}) and no final manifest; they are "
                    f"lost with this pod: {cause}")
        else:
            text = f"every chunk is stored, but the final manifest was not written: {cause}"
        super().__init__(text)
