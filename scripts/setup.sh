#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine, idempotently:
#   a virtualenv in .venv, torch 2.13.0 (the CPU build on this disk) before anything
#   that needs torch, the project with its dev extras, and, with --browser, Debian's
#   chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Any other torch pulls a CUDA build of several GB; this one is already on disk.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q chromium >/dev/null
    }
fi
