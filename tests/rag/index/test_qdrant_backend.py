"""The Qdrant backend on qdrant-client's embedded local mode: settings, errors, the
alias switch and the embedded store's one-process lock. The contract suite
(test_backend_contract.py) covers ids, scores, filters, add, delete and round trips."""

from __future__ import annotations

import json
from pathlib import Path

from rag.index.backends.qdrant_settings import DEFAULT_SETTINGS


def settings_with_dimension(dimension: int, path: Path) -> Path:
    """The deployment's settings file with every vector resized to `dimension`."""
    raw = json.loads(DEFAULT_SETTINGS.read_text(encoding="utf-8"))
    for params in raw["collection"]["vectors"].values():
        params["size"] = dimension
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path
