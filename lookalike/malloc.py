"""Give multi-megabyte buffers back to the OS when they are freed (glibc).

glibc maps a large allocation on its own and unmaps it on free, but once such a block is freed it
raises its mmap threshold to that size, so later image-sized buffers come from its arenas instead,
one per thread, where freed space stays in the process. Ingest (8 threads reading photos) and the
API (uploads) free an image's bytes after every image: with the threshold fixed at 1 MiB each one
is unmapped when its image leaves (what that saves: docs/constants.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 1 << 20


def map_large_buffers(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; False where there is no glibc (nothing done)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError) as exc:  # musl, macOS: their allocators differ; leave them be
        logger.debug("mallopt unavailable: %s", exc)
        return False
