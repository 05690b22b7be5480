"""`python -m scripts.benchmarks` (from the repository root) = `python scripts/bench.py`."""

import sys

from scripts.benchmarks.cli import main

sys.exit(main())
