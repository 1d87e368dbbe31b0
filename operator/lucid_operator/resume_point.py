"""Reads what the store holds of a session into a resume point (thin S3 edge).

Only with scoped credentials: the recorder's write-only keys cannot read the store, so
before each recorder pod is created the operator reads it with the long-lived key and
hands the result over in a ConfigMap (lucid_common.resume says why and what). It copies
bytes and computes hashes; it never interprets a chunk.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from lucid_common.layout import (
    CHUNK_HEAD_BYTES,
    CHUNKS_DIR,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    chunk_name,
    parse_chunk_name,
)
from lucid_common.resume import ResumePoint, ResumePointError, UnlistedChunk, manifest_chunk_seqs
from lucid_operator.storage_tls import failure

_READ_BLOCK = 1 << 20


def take(client: Minio, bucket: str, root: str, session_uid: str,
         now: dt.datetime) -> ResumePoint:
    """The session's manifest and chunk names, and the unlisted chunks' sizes, hashes and
    headers. ResumePointError (naming the object) when the store cannot be read."""
    try:
        manifest = _manifest(client, bucket, root + MANIFEST_NAME)
        sizes = _chunk_sizes(client, bucket, root + CHUNKS_DIR)
        listed = manifest_chunk_seqs(manifest) if manifest is not None else set()
        unlisted = [_describe(client, bucket, root + CHUNKS_DIR, seq, size)
                    for seq, size in sorted(sizes.items()) if seq not in listed]
    except S3Error as exc:
        raise ResumePointError(f"the store refused reading {exc.object_name or root} "
                               f"({exc.code})") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise ResumePointError(f"object store {failure(exc)[1]} while reading {root}") from exc
    return ResumePoint(
        session_uid=session_uid, taken_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        manifest=base64.b64encode(manifest).decode() if manifest is not None else None,
        chunk_seqs=sorted(sizes), unlisted=unlisted)


def _manifest(client: Minio, bucket: str, key: str) -> bytes | None:
    try:
        response = client.get_object(bucket, key, offset=0, length=MAX_MANIFEST_BYTES + 1)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
    try:
        data = response.read()
    finally:
        response.close()
        response.release_conn()
    if len(data) > MAX_MANIFEST_BYTES:
        raise ResumePointError(f"{key} is larger than the {MAX_MANIFEST_BYTES} bytes a "
                               "manifest may have")
    return data


def _chunk_sizes(client: Minio, bucket: str, prefix: str) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
        seq = parse_chunk_name((obj.object_name or "")[len(prefix):])
        if seq is not None:
            sizes[seq] = obj.size or 0
    return sizes


def _describe(client: Minio, bucket: str, prefix: str, seq: int, listed_size: int
              ) -> UnlistedChunk:
    """Size and SHA-256 of the whole object as read (not as listed), and its header."""
    key = prefix + chunk_name(seq)
    response = client.get_object(bucket, key)
    digest, head, size = hashlib.sha256(), b"", 0
    try:
        for block in response.stream(_READ_BLOCK):
            digest.update(block)
            if len(head) < CHUNK_HEAD_BYTES:
                head += block[:CHUNK_HEAD_BYTES - len(head)]
            size += len(block)
    finally:
        response.close()
        response.release_conn()
    if size != listed_size:
        raise ResumePointError(f"{key} changed while it was read ({listed_size} bytes "
                               f"listed, {size} read)")
    return UnlistedChunk(seq=seq, size=size, sha256=digest.hexdigest(),
                         head=base64.b64encode(head).decode())
