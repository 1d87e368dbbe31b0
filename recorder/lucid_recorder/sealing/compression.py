"""Chunk payload compression: zstd at a configurable level, or none.

The level comes from the spec (default 9, measured in bench/chunking.py). The recorder
compresses each chunk with `compress_chunk`: a window over the whole chunk and
long-distance matching (docs/storage.md has the measurements and the decision). No
dictionary: dictionaries lost ratio on 64 KiB chunks and do nothing for chunks of
megabytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import IntEnum

import zstandard

from lucid_recorder.sealing.errors import DecompressionError

# Hard ceiling on a chunk's plaintext: twice the API's 256 MiB chunk limit, so
# a chunker that overshoots by one update still fits, while a forged header
# cannot make a reader allocate more than this.
MAX_PLAINTEXT_BYTES = 512 * 1024 * 1024


class Codec(IntEnum):
    """Codec ids as written in the chunk header (one byte)."""

    NONE = 0
    ZSTD = 1

    @classmethod
    def from_name(cls, name: str) -> Codec:
        """Map the spec's `compression.codec` value ("zstd", "none")."""
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(f"unknown compression codec {name!r}") from None


@dataclass(frozen=True)
class Compressed:
    """A chunk payload ready to be sealed."""

    codec: Codec
    data: bytes
    plaintext_len: int


# zstd readers accept windows up to 2^27 bytes without being told to (libzstd's default
# limit, and so python-zstandard's); fzstd, the browser player's, up to about 2 GiB.
MAX_WINDOW_LOG = 27


# The window compress_chunk asks for: 32 MiB. zstd shrinks it to the chunk's own size, so a
# default chunk (8 MiB of updates plus its keyframe) gets a window over all of it; the cap
# bounds the compressor's memory for the largest chunks, and the reader's window.
CHUNK_WINDOW_LOG = 25


def compress_chunk(plaintext: bytes, codec: Codec, level: int) -> Compressed:
    """How the recorder compresses a chunk: the level's search, a window over the whole
    chunk and long-distance matching, which find the repaints and the chunk's keyframe
    further back than the level's own window reaches. On the scripted desktop at level 9
    that stored 38 % less for 0.3 CPU s per recorded minute and about 8 MiB more
    compressor memory (docs/benchmarks.md, section 5). Ordinary zstd frames: every
    reader decodes them."""
    if codec is Codec.NONE or not 1 <= level <= 22:
        return compress(plaintext, codec, level)  # nothing to tune, or the level's error
    # Levels 20-22 ask for more than the cap themselves.
    own = zstandard.ZstdCompressionParameters.from_level(level).window_log
    return compress(plaintext, codec, level, window_log=max(CHUNK_WINDOW_LOG, own),
                    long_distance=True)


def compress(plaintext: bytes, codec: Codec, level: int = 3, *,
             window_log: int | None = None, long_distance: bool = False) -> Compressed:
    """`window_log` (None: the level's own) and `long_distance` matching change how far
    back zstd looks for matches, not the frame format: every reader reads the result."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(
            f"chunk plaintext of {len(plaintext)} bytes exceeds {MAX_PLAINTEXT_BYTES}"
        )
    if codec is Codec.NONE:
        return Compressed(codec, bytes(plaintext), len(plaintext))
    if not 1 <= level <= 22:
        raise ValueError(f"zstd level {level} is outside 1..22")
    if window_log is not None and not 10 <= window_log <= MAX_WINDOW_LOG:
        raise ValueError(f"zstd window_log {window_log} is outside 10..{MAX_WINDOW_LOG}")
    data = compressor(len(plaintext), level, window_log, long_distance).compress(plaintext)
    return Compressed(codec, right_sized(data), len(plaintext))


def right_sized(data: bytes) -> bytes:
    """`data` in an allocation of its own size.

    ZstdCompressor.compress allocates the worst case (ZSTD_compressBound: more than the
    plaintext, megabytes for a chunk) and only shortens the length it reports, so a
    40 KiB payload would hold a 10 MiB block for as long as it waits to be sealed; the
    copy costs a memcpy of the compressed size.
    """
    return bytes(memoryview(data))


def compressor(source_size: int, level: int, window_log: int | None = None,
               long_distance: bool = False) -> zstandard.ZstdCompressor:
    # write_content_size lets a reader check the frame against the header.
    if window_log is None and not long_distance:
        return zstandard.ZstdCompressor(level=level, write_content_size=True)
    overrides: dict[str, int] = {"enable_ldm": int(long_distance)}
    if window_log is not None:
        overrides["window_log"] = window_log
    params = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=source_size, write_content_size=1, **overrides)
    return zstandard.ZstdCompressor(compression_params=params)


def decompress(payload: bytes, codec: Codec, plaintext_len: int) -> bytes:
    """Decompress to exactly `plaintext_len` bytes, never allocating more than that + 1."""
    if not 0 <= plaintext_len <= MAX_PLAINTEXT_BYTES:
        raise DecompressionError(f"stated plaintext length {plaintext_len} is out of bounds")
    if codec is Codec.NONE:
        if len(payload) != plaintext_len:
            raise DecompressionError(
                f"uncompressed payload is {len(payload)} bytes, header says {plaintext_len}"
            )
        return payload
    # ZstdDecompressor.decompress trusts the frame's content size and ignores
    # max_output_size, so read through a stream with an explicit bound.
    reader = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(payload), read_across_frames=True
    )
    try:
        with reader:
            out = reader.read(plaintext_len + 1)
    except zstandard.ZstdError as exc:
        raise DecompressionError(f"zstd payload is corrupt: {exc}") from exc
    if len(out) > plaintext_len:
        raise DecompressionError(
            f"zstd payload decompresses to more than the {plaintext_len} bytes its header states"
        )
    if len(out) < plaintext_len:
        raise DecompressionError(
            f"zstd payload decompresses to {len(out)} bytes, header says {plaintext_len}"
        )
    return out
