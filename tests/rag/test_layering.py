"""The structure the code promises: the library never imports the HTTP layer, and
importing it changes nothing in the process."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _without_offline_variables() -> dict[str, str]:
    # This process may have set them already (rag.runtime.configure in a fixture).
    return {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}


def _run_fresh(code: str) -> dict:
    """What `code` prints as JSON, run in a fresh interpreter without the offline
    variables."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=_without_offline_variables(),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_nothing_under_rag_imports_api() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m == "api" or m.startswith("api.")
        )
        for path in sorted((ROOT / "rag").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_check_sees_an_import_of_api(tmp_path: Path) -> None:
    # The check above must be able to fail: both import forms are found.
    module = tmp_path / "m.py"
    module.write_text("import api.main\nfrom api.routes import router\n")
    assert _imported_modules(module) == {"api.main", "api.routes"}


@pytest.mark.slow  # a fresh interpreter importing torch
def test_importing_rag_changes_no_environment_variable_or_thread_pool() -> None:
    # In a fresh interpreter: the environment and the BLAS thread limits before and after
    # `import rag` (and its pipeline modules) must be the same. `rag.runtime.configure()`
    # is where they change, called by the CLI, the server and the scripts.
    code = """
import json, os
import numpy, threadpoolctl
def pools():
    return {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info()}
before_env, before = dict(os.environ), pools()
import rag, rag.pipeline, rag.embedder, rag.index
after = pools()
print(json.dumps({
    "env": sorted(set(os.environ.items()) ^ set(before_env.items())),
    "before": before,
    "after": {path: after.get(path) for path in before},
}))
"""
    report = _run_fresh(code)
    assert report["env"] == []
    assert report["before"], "numpy's BLAS should be loaded before the import"
    assert report["after"] == report["before"]


@pytest.mark.slow  # a fresh interpreter importing torch
def test_configure_sets_offline_mode_and_one_blas_thread() -> None:
    code = """
import json, os
import threadpoolctl
from rag.runtime import configure
configure()
def blas():
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
configured = blas()
import torch  # loaded later, where the model runs: it must bring no BLAS of its own
print(json.dumps({"offline": os.environ.get("HF_HUB_OFFLINE"), "blas": configured,
                  "with_torch": blas()}))
"""
    report = _run_fresh(code)
    assert report["offline"] == "1"
    assert report["blas"] and set(report["blas"]) == {1}
    assert report["with_torch"] == report["blas"]


def test_reading_chunking_and_writing_do_not_load_torch() -> None:
    # Ray's read and chunk workers and a Ray build's driver import these modules and
    # never run the model; torch would add about 200 MB to each (docs/scaling.md).
    code = """
import json, sys
import rag, rag.cli, rag.index.executors.ray_executor, rag.index.backends.local
from rag.embedder import resolve_precision
resolve_precision("auto")
print(json.dumps(sorted(m for m in ("torch", "transformers") if m in sys.modules)))
"""
    assert _run_fresh(code) == []
