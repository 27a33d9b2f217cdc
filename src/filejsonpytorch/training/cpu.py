"""Two settings of the training process that make its steps cheaper; neither changed a
trained weight on any shared export (benchmarks/README.md, "Page faults and subnormal
numbers"). `cpu_settings()` makes both for the time training runs.

Freed memory kept (glibc's malloc). Torch takes a CPU tensor's memory from `malloc`. glibc
serves a large block from pages it maps for that block alone and unmaps when it is freed,
or gives the free top of its heap back to the system; either way the next block of that
size is new pages, which the kernel zero-fills on their first touch. A network with a
large embedding (sentence polarity's 15,396 words × 100) frees and allocates its gradient
and Adam's work tensors at every step. With both thresholds raised the blocks stay in the
heap and the next step reuses them. The process keeps, at most, its peak of memory in use
until it exits.

Subnormal numbers flushed to zero. Adam's first moment of a weight whose gradient stays 0
(an embedding row not in the batch, a unit that does not fire) shrinks by 0.9 a step and
after about 750 steps falls below float32's smallest normal number, 1.2e-38. The CPU
computes with such subnormal numbers many times slower than with others, so epochs grew
longer as training went on. As zeros they move no weight: a step of lr × 1e-38 / eps is
far below a float32 ulp of any weight that is not itself next to 0. The mode is the
thread's: torch's threads started after it inherit it, and Python's own float arithmetic
follows it too. It is put back when training ends, so a program that trains inside its own
process gets subnormal numbers back in that thread (torch's threads started meanwhile go
on flushing).
"""

import ctypes
import logging
import platform
from contextlib import contextmanager

import torch

log = logging.getLogger("filejsonpytorch")

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
#: blocks below the mmap threshold come from the heap: 1 GiB (a pre-trained embedding's
#: gradient too), else 32 MiB, the most that older glibc versions accept
MMAP_THRESHOLDS = (2 ** 30, 32 * 2 ** 20)
#: free memory at the top of the heap that glibc keeps rather than give back (C int's largest)
TRIM_THRESHOLD = 2 ** 31 - 1


@contextmanager
def cpu_settings():
    """Both settings while the block runs; enter it before torch starts its threads."""
    kept, flushed = keep_freed_memory(), torch.set_flush_denormal(True)
    log.debug("freed memory kept for reuse: %s; subnormal numbers flushed to zero: %s", kept, flushed)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def keep_freed_memory():
    """-> whether glibc's malloc now keeps freed blocks (False with another C library)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return (mallopt is not None and any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in MMAP_THRESHOLDS)
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
