"""Performance benchmark: `python scripts/bench.py --help`.

The benchmark is the package scripts/benchmarks/ (one module per section); this file
only runs it, so that the command stays the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
