"""Start a real `rag serve` (uvicorn) in a subprocess on a free port, for tests.

The harness itself is `scripts/harness.py`, shared with the benchmarks; this module keeps
the names the tests import."""

from __future__ import annotations

from scripts.harness import ROOT, Server, free_port, serve

__all__ = ["ROOT", "Server", "free_port", "serve"]
