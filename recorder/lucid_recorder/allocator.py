"""glibc's malloc, told to hand large blocks back to the kernel when they are freed.

The recorder allocates and frees blocks of megabytes every few seconds: a segment's
plaintext (up to chunking.maxBytes, 8 MiB by default, plus its keyframe), zstd's
compression context (tens of MiB with the chunk-sized window and long-distance
matching), the compressor's worst-case output buffer. glibc serves a block of 128 KiB or
more with its own mmap, but after the first such block is freed it raises that threshold
to the block's size (up to 32 MiB): from then on these blocks come from the heap and its
per-thread arenas (the compress, seal and upload threads each get one), and what they
free stays mapped, fragmented between smaller live blocks. On the 10-minute recording
(docs/benchmarks.md, section 4) that, with the chunks the stages kept referenced, was about
half of the recorder's RSS, and it grew over the run. A fixed threshold keeps large
blocks on mmap, so each is returned the moment it is freed; the cost is one mmap/munmap
and the page faults per large block (about 25 ms of CPU per chunk).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Mapping

log = logging.getLogger("lucid.recorder")

# mallopt's parameter number for the mmap threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
# glibc's own default, now fixed: setting it also stops the dynamic raising.
MMAP_THRESHOLD_BYTES = 128 * 1024
# Set in the environment, glibc reads it at start and this module leaves it alone.
ENV = "MALLOC_MMAP_THRESHOLD_"


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether to set the threshold: not when the environment already chose one."""
    return ENV not in environ


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt  # type: ignore[no-any-return]


def return_large_blocks(environ: Mapping[str, str],
                        mallopt: Callable[[], Callable[[int, int], int] | None] = _glibc_mallopt
                        ) -> bool:
    """Fix glibc's mmap threshold for this process; True if it was set here.

    Without glibc's mallopt (musl, say) the process runs with its allocator's defaults.
    """
    if not wanted(environ):
        log.info("%s is set in the environment; the allocator keeps it", ENV)
        return False
    call = mallopt()
    if call is None:
        log.info("no glibc mallopt; large blocks follow the allocator's defaults")
        return False
    if call(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) failed; freed large blocks may stay "
                    "mapped", MMAP_THRESHOLD_BYTES)
        return False
    return True
