"""The recorder's spool bound, derived from the size limit of its spool volume.

The recorder bounds its own spool (LUCID_RECORDER_SPOOL_MAX_BYTES: chunk files plus
journal) and, at that bound, pushes back: it stops sealing, reports Degraded "spool
full ... waiting for uploads", and loses nothing. The emptyDir's sizeLimit
(LUCID_SPOOL_SIZE_LIMIT) is enforced differently: a kubelet evicts the pod, spool and
all. So the operator hands the recorder a bound safely below the limit, and refuses a
limit (at start) or a session (Ready=False, SpoolTooSmall) whose largest chunk could
not fit under it, since such a chunk would fail the recorder instead of waiting.
"""

from __future__ import annotations

from lucid_common.api import RecordingSessionSpec
from lucid_operator.quantity import format_bytes, quantity_bytes

KiB = 1024

# What the recorder's count does not see, but a kubelet (du or a project quota) and a
# tmpfs do: the spool's directories, and the journal line of a chunk, appended after its
# room check. (The recorder counts chunk files and journal in whole filesystem blocks,
# and checks room for the chunk being written, tmp file included, before sealing.) A
# fifth of the limit is far more than that needs; it stays as margin for a kubelet that
# measures a little differently (tests/faults/test_spool_bound_e2e.py measured the disk
# at the bound with 64 KiB of 1 MiB to spare). The floor keeps room for the directories
# and journal of a tiny limit.
HEADROOM_DIVISOR = 5
MIN_HEADROOM = 64 * KiB
BOUND_PERCENT = 100 - 100 // HEADROOM_DIVISOR  # for the docs

# A chunk's plaintext: the opening keyframe, which chunking.maxBytes does not count; the
# updates up to maxBytes; and the one record that crosses it, which can bring a periodic
# keyframe plus a full-screen update. So three frames of width x height x 3 bytes, plus
# record framing and the pointer shape repeated after the opening keyframe.
FRAMES_PER_CHUNK = 3
RECORD_SLACK = 64 * KiB
# Sealing adds the chunk header (201 bytes + a session UID of at most 255) and the
# 16-byte GCM tag (docs/storage.md, "Chunk container").
SEAL_OVERHEAD = 512
# The smallest chunk any valid spec allows (api/spec.py: Chunking.max_bytes, Desktop):
# a limit whose bound cannot hold one such chunk fits no session at all.
SMALLEST_MAX_BYTES = 64 * KiB
SMALLEST_DESKTOP = (200, 200)


def spool_bound(limit: int) -> int:
    """The recorder's spool_max_bytes for a spool volume of `limit` bytes (may be <= 0)."""
    return limit - max(limit // HEADROOM_DIVISOR, MIN_HEADROOM)


def _zstd_bound(size: int) -> int:
    # ZSTD_COMPRESSBOUND: incompressible input grows by 1/256, plus a frame header and,
    # below 128 KiB, at most 64 bytes more; 1 KiB covers both.
    return size + size // 256 + KiB


def worst_chunk_bytes(max_bytes: int, width: int, height: int, compressed: bool = True) -> int:
    """An estimate, on the high side, of the largest sealed chunk: incompressible screen.

    Not covered: a server that imposes a larger desktop than the spec asks for, or
    pointer shapes beyond the slack. Such a chunk makes the recorder fail with "can
    never fit a spool of N bytes" rather than wait.
    """
    plaintext = max_bytes + FRAMES_PER_CHUNK * width * height * 3 + RECORD_SLACK
    return (_zstd_bound(plaintext) if compressed else plaintext) + SEAL_OVERHEAD


def smallest_worst_chunk() -> int:
    return worst_chunk_bytes(SMALLEST_MAX_BYTES, *SMALLEST_DESKTOP)


def minimum_limit() -> int:
    """The least spool volume whose bound holds one chunk of the smallest possible session."""
    need = smallest_worst_chunk()
    # spool_bound never decreases as the limit grows: a binary search finds the least.
    low, high = need, 2 * need + 2 * MIN_HEADROOM
    while low < high:
        middle = (low + high) // 2
        if spool_bound(middle) >= need:
            high = middle
        else:
            low = middle + 1
    return low


def check_limit(text: str) -> int:
    """The limit in bytes; ValueError (for the settings) if it is no quantity or too small."""
    limit = quantity_bytes(text)
    need = smallest_worst_chunk()
    if spool_bound(limit) < need:
        raise ValueError(
            f"{text!r} leaves the recorder a spool of {max(spool_bound(limit), 0)} bytes, "
            f"less than one chunk of the smallest session ({need} bytes: chunking.maxBytes "
            f"64Ki and a 200x200 desktop, incompressible); use at least "
            f"{minimum_limit_text()}")
    return limit


def minimum_limit_text() -> str:
    """minimum_limit() rounded up to a whole 64 KiB, as a quantity for docs and messages."""
    step = 64 * KiB
    return format_bytes(-(-minimum_limit() // step) * step)


def session_spool_problem(spec: RecordingSessionSpec, limit_text: str) -> str | None:
    """Why this session's largest chunk would not fit the spool bound, or None if it does."""
    bound = spool_bound(quantity_bytes(limit_text))
    desktop, chunking = spec.recording.desktop, spec.chunking
    worst = worst_chunk_bytes(chunking.max_bytes, desktop.width, desktop.height,
                              compressed=spec.compression.codec.value != "none")
    if worst <= bound:
        return None
    return (f"a chunk of this session can reach {worst} bytes (chunking.maxBytes "
            f"{chunking.max_bytes} plus {FRAMES_PER_CHUNK} frames of {desktop.width}x"
            f"{desktop.height}, incompressible), more than the recorder's spool bound of "
            f"{bound} bytes (LUCID_SPOOL_SIZE_LIMIT {limit_text} less headroom): lower "
            f"spec.chunking.maxBytes or the desktop size, or raise the operator's "
            f"LUCID_SPOOL_SIZE_LIMIT")
