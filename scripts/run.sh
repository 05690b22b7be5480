#!/usr/bin/env bash
# Set up, build index/ from seeds/ if it is missing or stale, and serve the API and the
# chat page on http://127.0.0.1:8000 (override with HOST= and PORT=).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
rag index --corpus seeds --out index --if-stale
exec rag serve --index index --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
