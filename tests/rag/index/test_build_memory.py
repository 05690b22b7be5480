"""What keeps a build's memory from growing with the corpus, unit by unit (the bound
itself is measured by the benchmark: scripts/benchmarks/executors.py).

- `bound_heap` (rag/runtime.py): with glibc's default, arrays of changing sizes (a
  forward pass's activations, one size per padded batch) freed among small long-lived
  allocations leave the heap larger after each; with the fixed threshold they are
  returned to the system.
- Document batches are padded to a multiple of `PAD_MULTIPLE` word pieces, so the
  kernels PyTorch's oneDNN caches per shape stop being created anew as lengths vary.
"""

from __future__ import annotations

import subprocess
import sys

from tests.servers import ROOT

# In a fresh interpreter: allocate and free arrays of 1-16 MB, each followed by a small
# allocation that stays, and print how much the anonymous resident memory grew (MB).
_CHURN = """
import sys
import numpy as np
if sys.argv[1] == "bound":
    from rag.runtime import bound_heap
    bound_heap()
def anon_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("RssAnon")) / 1024
rng = np.random.default_rng(0)
kept = []
start = anon_mb()
for _ in range(400):
    a = np.ones(int(rng.integers(1 << 18, 4 << 20)), dtype=np.float32)
    kept.append(np.ones(64))
    del a
print(anon_mb() - start)
"""


def _growth(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def test_bound_heap_returns_freed_arrays_to_the_system() -> None:
    default, bounded = _growth("default"), _growth("bound")
    assert default > 15, f"the default heap grew only {default:.1f} MB: the churn shows nothing"
    assert bounded < 3, f"with bound_heap the heap still grew {bounded:.1f} MB"


def test_document_batches_are_padded_to_a_multiple_of_pad_multiple() -> None:
    from rag.embedder import PAD_MULTIPLE, _pad

    assert PAD_MULTIPLE == 16
    ids, mask = _pad([[101, 7, 102], [101, 102]], PAD_MULTIPLE)
    assert ids.shape == mask.shape == (2, 16)
    assert ids[0, :3].tolist() == [101, 7, 102] and not ids[0, 3:].any()
    assert mask.sum(axis=1).tolist() == [3, 2]
    assert _pad([[1] * 16], 16)[0].shape == (1, 16)
    assert _pad([[1] * 17], 16)[0].shape == (1, 32)
    assert _pad([[1, 2, 3]])[0].shape == (1, 3)  # questions: the longest row, unrounded
