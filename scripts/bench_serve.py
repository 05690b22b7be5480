"""`rag serve` exactly as the CLI runs it, with api.engine's batch log at DEBUG.

scripts/bench.py starts the server through this file so that it can count the batch
sizes the micro-batcher achieved (one "answered a batch of N" line per forward pass)
without any route or setting of the server changing. Usage: the same arguments as
`rag`, e.g. `python scripts/bench_serve.py serve --index index --port 8000`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    # rag.cli.main calls logging.basicConfig, which keeps a root handler set up earlier.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("api.engine").setLevel(logging.DEBUG)
    from rag.cli import main

    sys.exit(main(sys.argv[1:]))
