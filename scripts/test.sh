#!/usr/bin/env bash
# Set up (chromium included) and run the whole test suite: lint, then every test,
# the real model, the real FAISS index, real servers and a real browser included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --browser
. .venv/bin/activate
ruff check rag api scripts tests
python -m pytest "$@"
