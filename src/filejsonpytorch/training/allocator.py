"""Freed memory kept for the next training step, where the C library allows it (glibc).

Torch takes a CPU tensor's memory from `malloc`. glibc serves a large block from pages
that it maps for it alone and unmaps when the block is freed, or it returns the free top
of its heap to the system; either way the next block of that size is new pages, which the
kernel zero-fills on their first touch. A network with a large embedding (sentence
polarity's 15,396 words × 100) frees and allocates its gradient and Adam's work tensors at
every step, and paid that cost in a third of each epoch. With both thresholds raised, the
blocks stay in the heap and the next step reuses them: the same arithmetic, so the same
networks (benchmarks/README.md, "Freed memory kept"). The process keeps, at most, its
peak of memory in use until it exits.
"""

import ctypes
import logging
import platform

log = logging.getLogger("filejsonpytorch")

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
#: blocks below the mmap threshold come from the heap: 1 GiB (a pre-trained embedding's
#: gradient too), else 32 MiB, the most that older glibc versions accept
MMAP_THRESHOLDS = (2 ** 30, 32 * 2 ** 20)
#: free memory at the top of the heap that glibc keeps rather than give back (C int's largest)
TRIM_THRESHOLD = 2 ** 31 - 1


def keep_freed_memory():
    """-> whether glibc's malloc now keeps freed blocks (False with another C library)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    kept = (mallopt is not None and any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in MMAP_THRESHOLDS)
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    log.debug("glibc malloc keeps freed blocks for reuse: %s", kept)
    return kept
